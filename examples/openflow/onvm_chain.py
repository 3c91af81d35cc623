#!/usr/bin/env python3
"""An os-ken (Ryu) controller that steers traffic through chains of onvm NFs.

onvm's manager is an OpenFlow 1.3 switch whose ports are its packet ports (OpenFlow
port p+1 for manager port p) and one logical port per NF service (0x1000 + service
id, e.g. 4097 for service 1). A chain is a list of OpenFlow ports: the first is where
traffic enters, the last where it leaves, and each one in between is a service.

    # Manager: port 0 in, port 1 out, services 1 and 2; connects to the controller.
    onvm mgr -p afpacket:eth1 -p afpacket:eth2 --controller tcp:127.0.0.1:6653 &
    # Controller: eth1 -> service 1 -> service 2 -> eth2 on every switch.
    python3 examples/openflow/onvm_chain.py --listen 6653 --chain any=1,4097,4098,2

Chains are per datapath (`--chain 0xa=1,4097,2 --chain 0xb=1,4098,2`), which is how
one controller steers a chain across several managers (see docs/OPENFLOW.md).

Modes:
  proactive (default)  every rule of the chain is installed as the switch connects;
                       "installed N rules on <dpid>" is printed once the switch
                       confirmed them (barrier).
  --reactive buffer    only a table-miss rule (to the controller) is installed; each
                       PACKET_IN installs the hop for its in_port with FLOW_MOD, which
                       names the packet's switch buffer, so that very packet goes on.
  --reactive whole     as above, but the switch sends whole packets (no buffer) and
                       the controller sends each back with PACKET_OUT.

Runs os-ken directly (os-ken 4.x has no launcher script): `pip install os-ken`.
"""

import argparse
import sys

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

# Filled from the command line before os-ken instantiates the app.
SETTINGS = {"chains": {}, "reactive": None, "priority": 100}


def say(*words):
    print("onvm-chain:", *words, flush=True)


def parse_chain(text):
    """`DPID=IN,HOP,...,OUT` (DPID hex, decimal or `any`) -> (dpid or None, [ports])."""
    dpid, _, ports = text.partition("=")
    hops = [int(p, 0) for p in ports.split(",") if p]
    if len(hops) < 2:
        raise argparse.ArgumentTypeError(f"chain {text!r}: needs an in port and an out port")
    return (None if dpid == "any" else int(dpid, 0)), hops


class OnvmChain(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def hops(self, dpid):
        """{in_port: next port} of the chain for this datapath."""
        chains = SETTINGS["chains"]
        chain = chains.get(dpid, chains.get(None, []))
        return dict(zip(chain, chain[1:]))

    def add_flow(self, dp, in_port, out_port, buffer_id=None):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        match = parser.OFPMatch(in_port=in_port)
        actions = [parser.OFPActionOutput(out_port)]
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(
            parser.OFPFlowMod(
                datapath=dp,
                priority=SETTINGS["priority"],
                match=match,
                instructions=inst,
                buffer_id=ofp.OFP_NO_BUFFER if buffer_id is None else buffer_id,
            )
        )

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        hops = self.hops(dp.id)
        if SETTINGS["reactive"]:
            max_len = ofp.OFPCML_NO_BUFFER if SETTINGS["reactive"] == "whole" else 128
            miss = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, max_len)]
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, miss)]
            dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=0, match=parser.OFPMatch(), instructions=inst))
            n = 1
        else:
            for in_port, out_port in hops.items():
                self.add_flow(dp, in_port, out_port)
            n = len(hops)
        self.pending = getattr(self, "pending", {})
        self.pending[dp.id] = n
        dp.send_msg(parser.OFPBarrierRequest(dp))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier(self, ev):
        dp = ev.msg.datapath
        n = getattr(self, "pending", {}).pop(dp.id, None)
        if n is not None:
            say(f"installed {n} rules on {dp.id:#x}")

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        out_port = self.hops(dp.id).get(in_port)
        buffered = msg.buffer_id != ofp.OFP_NO_BUFFER
        say(f"packet-in {dp.id:#x} in_port={in_port} len={msg.total_len} buffered={buffered}")
        if out_port is None:
            return
        if buffered:
            # The FLOW_MOD names the buffer: the switch sends that packet through the rule.
            self.add_flow(dp, in_port, out_port, buffer_id=msg.buffer_id)
        else:
            self.add_flow(dp, in_port, out_port)
            actions = [parser.OFPActionOutput(out_port)]
            dp.send_msg(
                parser.OFPPacketOut(
                    datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port, actions=actions, data=msg.data
                )
            )

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev):
        say(f"error from {ev.msg.datapath.id:#x}: type {ev.msg.type} code {ev.msg.code}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, default=6653, help="TCP port for switches (default 6653)")
    ap.add_argument("--chain", type=parse_chain, action="append", required=True, help="DPID=IN,HOP,...,OUT")
    ap.add_argument("--reactive", choices=["buffer", "whole"], help="install hops on PACKET_IN")
    args = ap.parse_args(argv)
    SETTINGS["chains"] = dict(args.chain)
    SETTINGS["reactive"] = args.reactive
    cfg.CONF(args=["--ofp-tcp-listen-port", str(args.listen)], project="os_ken")
    manager = app_manager.AppManager.get_instance()
    manager.load_apps([__name__, "os_ken.controller.ofp_handler"])
    services = manager.instantiate_apps(**manager.create_contexts())
    say(f"listening on {args.listen}")
    from os_ken.lib import hub

    hub.joinall(services)


if __name__ == "__main__":
    main(sys.argv[1:])

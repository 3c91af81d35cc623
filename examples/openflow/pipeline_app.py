#!/usr/bin/env python3
"""An os-ken (Ryu) app that programs one small pipeline on every switch that connects:
a VLAN access/trunk pair, a SELECT group that spreads flows over NF services, and a
meter that rate-limits one flow. It is written for onvm's manager and for Open vSwitch
alike: it learns each switch's datapath id and ports (PORT_DESC) and installs the same
rules on both (crates/onvm-cli/tests/interop_osken_ovs.rs runs it against both and
compares their frames byte for byte).

The pipeline (table 0; VID, ports and rates from the config below):

    access, untagged                 push_vlan 0x8100, set_field vlan_vid=VID,
                                     group 1 (SELECT: one bucket per service,
                                     each bucket an output to the service's port)
    service port (an NF hands back)  output:trunk (the tag stays)
    trunk, vlan_vid=VID              pop_vlan, output:access
    access, untagged, UDP to the     meter 1 (pktps, burst, one drop band), then
      meter port (higher priority)   push_vlan, set_field vlan_vid=VID, output:trunk

Anything else is dropped (no table-miss rule). On onvm an NF service is the logical
port 0x1000 + service id (4097 for service 1): the group hands each flow to one
instance of one service and the packet the NF returns (`Next`) re-enters the table
with in_port = that service's port. On Open vSwitch the same numbers can be patch
ports into a bridge that sends every packet back out IN_PORT (what the test does).

Before installing, the app deletes every flow, group and meter, so a switch that kept
its table (fail mode secure) across a controller restart gets the pipeline afresh.
Once a barrier has confirmed everything it prints

    pipeline-app: pipeline ready on 0xa1: 6 flows, group 1 -> 4097,4098,4099, meter 1 ...

or, if the switch refused anything, one `pipeline-app: error from 0x..: WHAT: OFPET_...
OFP..._...` line per refusal and `pipeline-app: pipeline refused on 0x..: N errors`.

Config: a JSON object from `--config FILE` or from the environment variable
PIPELINE_APP_CONFIG (the JSON text itself); every key is optional:

    {
      "access": 1,                   # port number or name (as PORT_DESC names it)
      "trunk": 2,
      "vlan": 100,                   # VID pushed at access, popped at trunk
      "services": [4097, 4098, 4099],# the group's buckets, in order; numbers or names
      "meter": {"udp_dst": 9999, "rate_pktps": 1000, "burst": 100},
      "switches": {"0xa1": {"access": "eth1"}}   # per datapath id: overrides
    }

    python3 examples/openflow/pipeline_app.py --listen 6653 --config pipeline.json
    onvm mgr -p afpacket:eth1 -p afpacket:eth2 --controller tcp:127.0.0.1:6653 &
    onvm nf --service 1 simple-forward &  # ... services 2 and 3 likewise

Runs os-ken directly (os-ken 4.x has no launcher script): `pip install os-ken`.
"""

import argparse
import json
import os
import sys

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ether_types
from os_ken.ofproto import ofproto_v1_3

DEFAULTS = {
    "access": 1,
    "trunk": 2,
    "vlan": 100,
    "services": [0x1001, 0x1002, 0x1003],
    "meter": {"udp_dst": 9999, "rate_pktps": 1000, "burst": 100},
}
GROUP_ID = 1
METER_ID = 1
PRIORITY = 100
METER_PRIORITY = 200

# Filled from the command line before os-ken instantiates the app.
SETTINGS = {"config": {}}

# Error codes by their type, for readable refusals: OFPET_BAD_ACTION -> OFPBAC_*, ...
ERROR_CODE_PREFIX = {
    "OFPET_HELLO_FAILED": "OFPHFC_",
    "OFPET_BAD_REQUEST": "OFPBRC_",
    "OFPET_BAD_ACTION": "OFPBAC_",
    "OFPET_BAD_INSTRUCTION": "OFPBIC_",
    "OFPET_BAD_MATCH": "OFPBMC_",
    "OFPET_FLOW_MOD_FAILED": "OFPFMFC_",
    "OFPET_GROUP_MOD_FAILED": "OFPGMFC_",
    "OFPET_PORT_MOD_FAILED": "OFPPMFC_",
    "OFPET_TABLE_MOD_FAILED": "OFPTMFC_",
    "OFPET_QUEUE_OP_FAILED": "OFPQOFC_",
    "OFPET_SWITCH_CONFIG_FAILED": "OFPSCFC_",
    "OFPET_ROLE_REQUEST_FAILED": "OFPRRFC_",
    "OFPET_METER_MOD_FAILED": "OFPMMFC_",
    "OFPET_TABLE_FEATURES_FAILED": "OFPTFFC_",
}


def say(*words):
    print("pipeline-app:", *words, flush=True)


def error_names(ofp, type_, code):
    """(`OFPET_...`, `OFP..._...`) for an error's type and code, numbers if unknown."""
    names = {getattr(ofp, n): n for n in ERROR_CODE_PREFIX if hasattr(ofp, n)}
    type_name = names.get(type_, f"type {type_}")
    prefix = ERROR_CODE_PREFIX.get(type_name)
    codes = [n for n in dir(ofp) if prefix and n.startswith(prefix) and getattr(ofp, n) == code]
    return type_name, (codes[0] if codes else f"code {code}")


def load_config(path):
    """DEFAULTS, then the file (or $PIPELINE_APP_CONFIG), key by key."""
    text = None
    if path:
        with open(path) as f:
            text = f.read()
    elif os.environ.get("PIPELINE_APP_CONFIG"):
        text = os.environ["PIPELINE_APP_CONFIG"]
    given = json.loads(text) if text else {}
    unknown = set(given) - set(DEFAULTS) - {"switches"}
    if unknown:
        raise SystemExit(f"pipeline-app: unknown config keys {sorted(unknown)}")
    return given


def settings_for(dpid):
    """The config for one datapath: DEFAULTS, the top level, then switches[dpid]."""
    given = SETTINGS["config"]
    merged = {**DEFAULTS, **{k: v for k, v in given.items() if k != "switches"}}
    for key, over in given.get("switches", {}).items():
        if int(key, 0) == dpid:
            merged.update(over)
    merged["meter"] = {**DEFAULTS["meter"], **merged["meter"]}
    return merged


class PipelineApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Per datapath id: {xid: what that message was}, the refusals so far, the
        # barrier that ends the pipeline, its summary, and ports while PORT_DESC parts come.
        self.sent = {}
        self.errors = {}
        self.barrier_xid = {}
        self.summary = {}
        self.known = {}

    def send(self, dp, msg, what):
        """Send `msg`, remembering `what` it was so an error can name it."""
        dp.set_xid(msg)
        self.sent.setdefault(dp.id, {})[msg.xid] = what
        dp.send_msg(msg)

    @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
    def connected(self, ev):
        """Handshake done: ask for the ports (the pipeline follows their reply)."""
        dp = ev.datapath
        self.send(dp, dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0), "PORT_DESC request")

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def ports(self, ev):
        dp = ev.msg.datapath
        ports = {p.port_no: p.name.decode() if isinstance(p.name, bytes) else p.name for p in ev.msg.body}
        self.known.setdefault(dp.id, {}).update(ports)
        if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            return
        ports = self.known.pop(dp.id)
        listed = " ".join(f"{no}({name})" for no, name in sorted(ports.items()))
        say(f"switch {dp.id:#x} connected, ports: {listed}")
        self.install(dp, ports, settings_for(dp.id))

    def resolve(self, dp, ports, port):
        """A port number from a number or a PORT_DESC name."""
        if isinstance(port, int):
            if port not in ports:
                say(f"warning: {dp.id:#x} lists no port {port}; installing its rules anyway")
            return port
        by_name = {name: no for no, name in ports.items()}
        if port not in by_name:
            raise SystemExit(f"pipeline-app: {dp.id:#x} has no port named {port!r}: {sorted(by_name)}")
        return by_name[port]

    def install(self, dp, ports, conf):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        access = self.resolve(dp, ports, conf["access"])
        trunk = self.resolve(dp, ports, conf["trunk"])
        services = [self.resolve(dp, ports, s) for s in conf["services"]]
        vid = ofp.OFPVID_PRESENT | conf["vlan"]
        meter = conf["meter"]
        self.errors[dp.id] = []

        # A clean slate: flows first (they use the group and the meter), then both.
        self.send(
            dp,
            parser.OFPFlowMod(
                dp,
                table_id=ofp.OFPTT_ALL,
                command=ofp.OFPFC_DELETE,
                out_port=ofp.OFPP_ANY,
                out_group=ofp.OFPG_ANY,
                match=parser.OFPMatch(),
            ),
            "FLOW_MOD delete all",
        )
        self.send(dp, parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, 0, ofp.OFPG_ALL), "GROUP_MOD delete all")
        self.send(dp, parser.OFPMeterMod(dp, ofp.OFPMC_DELETE, 0, ofp.OFPM_ALL), "METER_MOD delete all")

        # The SELECT group: the switch picks one bucket per flow (its own hash).
        buckets = [parser.OFPBucket(weight=1, actions=[parser.OFPActionOutput(s)]) for s in services]
        self.send(
            dp,
            parser.OFPGroupMod(dp, ofp.OFPGC_ADD, ofp.OFPGT_SELECT, GROUP_ID, buckets),
            f"GROUP_MOD add select group {GROUP_ID}",
        )
        # The meter: `rate_pktps` packets a second, `burst` packets over it at once; the rest dropped.
        band = parser.OFPMeterBandDrop(rate=meter["rate_pktps"], burst_size=meter["burst"])
        self.send(
            dp,
            parser.OFPMeterMod(
                dp,
                ofp.OFPMC_ADD,
                ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS,
                METER_ID,
                [band],
            ),
            f"METER_MOD add meter {METER_ID}",
        )

        tag = [
            parser.OFPActionPushVlan(ether_types.ETH_TYPE_8021Q),
            parser.OFPActionSetField(vlan_vid=vid),
        ]
        flows = [
            (
                "access -> tag -> group",
                PRIORITY,
                parser.OFPMatch(in_port=access, vlan_vid=ofp.OFPVID_NONE),
                [],
                tag + [parser.OFPActionGroup(GROUP_ID)],
            ),
            (
                "trunk -> untag -> access",
                PRIORITY,
                parser.OFPMatch(in_port=trunk, vlan_vid=vid),
                [],
                [parser.OFPActionPopVlan(), parser.OFPActionOutput(access)],
            ),
            (
                "access, metered UDP -> tag -> trunk",
                METER_PRIORITY,
                parser.OFPMatch(
                    in_port=access,
                    vlan_vid=ofp.OFPVID_NONE,
                    eth_type=ether_types.ETH_TYPE_IP,
                    ip_proto=17,
                    udp_dst=meter["udp_dst"],
                ),
                [parser.OFPInstructionMeter(METER_ID, ofp.OFPIT_METER)],
                tag + [parser.OFPActionOutput(trunk)],
            ),
        ]
        for s in services:
            # What an NF hands back comes in on its service's port, still tagged.
            back = parser.OFPMatch(in_port=s)
            flows.append((f"service {s} -> trunk", PRIORITY, back, [], [parser.OFPActionOutput(trunk)]))
        for what, priority, match, pre, actions in flows:
            inst = pre + [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
            self.send(
                dp,
                parser.OFPFlowMod(dp, priority=priority, match=match, instructions=inst),
                f"FLOW_MOD add {what}",
            )

        barrier = parser.OFPBarrierRequest(dp)
        self.send(dp, barrier, "BARRIER")
        self.barrier_xid[dp.id] = barrier.xid
        self.summary[dp.id] = (
            f"{len(flows)} flows, group {GROUP_ID} -> {','.join(map(str, services))}, "
            f"meter {METER_ID} ({meter['rate_pktps']} pktps, burst {meter['burst']}) on UDP "
            f"port {meter['udp_dst']}, VLAN {conf['vlan']} between ports {access} and {trunk}"
        )

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier(self, ev):
        # The switch answers in order: every refusal came before this.
        dp = ev.msg.datapath
        if self.barrier_xid.get(dp.id) != ev.msg.xid:
            return
        errors = self.errors.get(dp.id, [])
        if errors:
            say(f"pipeline refused on {dp.id:#x}: {len(errors)} errors")
        else:
            say(f"pipeline ready on {dp.id:#x}: {self.summary[dp.id]}")

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev):
        msg = ev.msg
        dp = msg.datapath
        what = self.sent.get(dp.id, {}).get(msg.xid, f"xid {msg.xid:#x}")
        type_name, code_name = error_names(dp.ofproto, msg.type, msg.code)
        self.errors.setdefault(dp.id, []).append(what)
        say(f"error from {dp.id:#x}: {what}: {type_name} {code_name}")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=int, default=6653, help="TCP port for switches (default 6653)")
    ap.add_argument("--listen-host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--config", help="JSON config file (else $PIPELINE_APP_CONFIG, else the defaults)")
    args = ap.parse_args(argv)
    SETTINGS["config"] = load_config(args.config)
    cfg.CONF(
        args=["--ofp-tcp-listen-port", str(args.listen), "--ofp-listen-host", args.listen_host],
        project="os_ken",
    )
    manager = app_manager.AppManager.get_instance()
    manager.load_apps([__name__, "os_ken.controller.ofp_handler"])
    services = manager.instantiate_apps(**manager.create_contexts())
    say(f"listening on {args.listen_host}:{args.listen}")
    from os_ken.lib import hub

    hub.joinall(services)


if __name__ == "__main__":
    main(sys.argv[1:])

//! FLOW_MOD: the controller adds, changes or removes flows.
//!
//! Decoding checks what only needs the message itself: a known command and flags, a
//! table id that is not OFPTT_ALL except for deletes, and GOTO_TABLE only forward
//! (`OFPBIC_BAD_TABLE_ID`), and actions whose header the match, or a push before them,
//! guarantees (`OFPBAC_MATCH_INCONSISTENT`: rewriting tcp_dst needs `ip_proto = 6`,
//! vlan_vid a tag or a push_vlan; see [`crate::HeaderState`]). Whether a flow overlaps
//! another (CHECK_OVERLAP) or fits the table is for the flow table to say.

use crate::action::HeaderState;
use crate::error::{ErrorKind, OfpError, ofpbic, ofpet, ofpfmfc};
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::wire::{Reader, Writer};

/// Table id meaning "all tables" (deletes and stats requests only).
pub const OFPTT_ALL: u8 = 0xff;
/// Highest real table id.
pub const OFPTT_MAX: u8 = 0xfe;
/// `buffer_id` meaning "no buffered packet".
pub const OFP_NO_BUFFER: u32 = 0xffff_ffff;

/// `ofp_flow_mod_command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    Add = 0,
    Modify = 1,
    ModifyStrict = 2,
    Delete = 3,
    DeleteStrict = 4,
}

/// `ofp_flow_mod_flags`.
pub mod ofpff {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
    /// Every flag 1.3 defines.
    pub const ALL: u16 = 0x1f;
}

/// `ofp_flow_mod` (after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    /// For modify/delete: which cookie bits must equal `cookie` (0 = any cookie).
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    /// A packet buffered at the switch to run through the new flow, or [`OFP_NO_BUFFER`].
    pub buffer_id: u32,
    /// For deletes: only flows that output to this port ([`crate::ofpp::ANY`] = any).
    pub out_port: u32,
    /// For deletes: only flows that output to this group ([`crate::OFPG_ANY`] = any).
    pub out_group: u32,
    /// [`ofpff`] bits.
    pub flags: u16,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

fn flow_mod_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::FLOW_MOD_FAILED, code, message)
}

impl FlowMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = match r.u8()? {
            0 => FlowModCommand::Add,
            1 => FlowModCommand::Modify,
            2 => FlowModCommand::ModifyStrict,
            3 => FlowModCommand::Delete,
            4 => FlowModCommand::DeleteStrict,
            other => {
                return Err(flow_mod_error(
                    ofpfmfc::BAD_COMMAND,
                    format!("unknown flow-mod command {other}"),
                ));
            }
        };
        let idle_timeout = r.u16()?;
        let hard_timeout = r.u16()?;
        let priority = r.u16()?;
        let buffer_id = r.u32()?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        let flags = r.u16()?;
        r.skip(2)?;
        if flags & !ofpff::ALL != 0 {
            return Err(flow_mod_error(
                ofpfmfc::BAD_FLAGS,
                format!("unknown flow-mod flags {flags:#06x}"),
            ));
        }
        let deletes = matches!(command, FlowModCommand::Delete | FlowModCommand::DeleteStrict);
        if table_id == OFPTT_ALL && !deletes {
            return Err(flow_mod_error(
                ofpfmfc::BAD_TABLE_ID,
                "OFPTT_ALL is only allowed for delete commands".into(),
            ));
        }
        let match_ = Match::decode(r)?;
        let instructions = Instruction::decode_list(r.rest())?;
        if !deletes {
            check_instructions(table_id, &match_, &instructions)?;
        }
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            match_,
            instructions,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.cookie);
        w.u64(self.cookie_mask);
        w.u8(self.table_id);
        w.u8(self.command as u8);
        w.u16(self.idle_timeout);
        w.u16(self.hard_timeout);
        w.u16(self.priority);
        w.u32(self.buffer_id);
        w.u32(self.out_port);
        w.u32(self.out_group);
        w.u16(self.flags);
        w.zeros(2);
        self.match_.encode(w);
        Instruction::encode_list(&self.instructions, w);
    }
}

/// What the spec makes a switch check of the instructions of a flow it installs (a
/// delete ignores its instructions, so it is not checked): GOTO_TABLE only forward, and
/// actions only on headers the packet has. Apply-actions run first and change the
/// packet the action set then sees, whatever order the instructions come in, so the
/// write-actions are checked in the state the apply-actions leave, and in the order
/// the action set runs them.
fn check_instructions(table_id: u8, match_: &Match, instructions: &[Instruction]) -> Result<(), OfpError> {
    if let Some(Instruction::GotoTable(next)) = instructions
        .iter()
        .find(|i| matches!(i, Instruction::GotoTable(t) if *t <= table_id || *t > OFPTT_MAX))
    {
        return Err(OfpError::new(
            ErrorKind::new(ofpet::BAD_INSTRUCTION, ofpbic::BAD_TABLE_ID),
            format!("goto table {next} from table {table_id}: tables only go forward"),
        ));
    }
    let mut state = HeaderState::of(match_);
    for i in instructions {
        if let Instruction::ApplyActions(a) = i {
            state.check_list(a)?;
        }
    }
    for i in instructions {
        if let Instruction::WriteActions(a) = i {
            state.check_action_set(a)?;
        }
    }
    Ok(())
}

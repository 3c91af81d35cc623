//! Instructions: what a matching flow does — run actions now (APPLY), add them to the
//! action set (WRITE), empty the action set (CLEAR), continue in a later table (GOTO).
//!
//! Also WRITE_METADATA (set bits of the metadata register that later tables match) and
//! METER (pass the packet through a meter first).
//!
//! `type:16 len:16` and a body, `len` a multiple of 8; a type outside the spec is
//! `OFPBIC_UNKNOWN_INST`. A METER instruction must name a real meter: id 0 and the
//! virtual or reserved ids above [`crate::OFPM_MAX`] are `OFPMMFC_INVALID_METER`, as in
//! Open vSwitch (`check_METER`).

use crate::action::Action;
use crate::error::{ErrorKind, OfpError, ofpbic, ofpet, ofpmmfc};
use crate::meter::OFPM_MAX;
use crate::wire::{Reader, Writer};

/// `ofp_instruction_type` values.
pub mod ofpit {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    /// Set the metadata bits that are 1 in `mask` to those of `metadata`.
    WriteMetadata {
        metadata: u64,
        mask: u64,
    },
    /// Run the packet through meter `meter_id` (in `1..=OFPM_MAX`).
    Meter(u32),
}

fn instruction_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_INSTRUCTION, code, message)
}

impl Instruction {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 || len - 4 > r.remaining() {
            return Err(r.short_error(format_args!(
                "instruction type {ty} length {len} is not a multiple of 8 within the {} bytes left",
                r.remaining() + 4
            )));
        }
        let mut body = r.sub(len - 4, ErrorKind::BAD_INSTRUCTION_LEN, "instruction")?;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(instruction_error(
                    ofpbic::BAD_LEN,
                    format!("instruction type {ty} has length {len}, needs {want}"),
                ))
            }
        };
        match ty {
            ofpit::GOTO_TABLE => {
                fixed(8)?;
                Ok(Instruction::GotoTable(body.u8()?))
            }
            ofpit::WRITE_ACTIONS | ofpit::APPLY_ACTIONS => {
                body.skip(4)?;
                let actions = Action::decode_list(Reader::new(body.rest(), ErrorKind::BAD_ACTION_LEN, "action"))?;
                Ok(if ty == ofpit::WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                })
            }
            ofpit::CLEAR_ACTIONS => {
                fixed(8)?;
                Ok(Instruction::ClearActions)
            }
            ofpit::WRITE_METADATA => {
                fixed(24)?;
                body.skip(4)?;
                Ok(Instruction::WriteMetadata {
                    metadata: body.u64()?,
                    mask: body.u64()?,
                })
            }
            ofpit::METER => {
                fixed(8)?;
                match body.u32()? {
                    id @ 1..=OFPM_MAX => Ok(Instruction::Meter(id)),
                    id => Err(OfpError::of(
                        ofpet::METER_MOD_FAILED,
                        ofpmmfc::INVALID_METER,
                        format!("meter instruction with meter id {id:#x} (ids are 1 to {OFPM_MAX:#x})"),
                    )),
                }
            }
            ofpit::EXPERIMENTER => Err(instruction_error(
                ofpbic::BAD_EXPERIMENTER,
                "experimenter instructions are not supported".into(),
            )),
            other => Err(instruction_error(
                ofpbic::UNKNOWN_INST,
                format!("unknown instruction type {other}"),
            )),
        }
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let (ty, actions) = match self {
            Instruction::GotoTable(_) => (ofpit::GOTO_TABLE, None),
            Instruction::WriteActions(a) => (ofpit::WRITE_ACTIONS, Some(a)),
            Instruction::ApplyActions(a) => (ofpit::APPLY_ACTIONS, Some(a)),
            Instruction::ClearActions => (ofpit::CLEAR_ACTIONS, None),
            Instruction::WriteMetadata { .. } => (ofpit::WRITE_METADATA, None),
            Instruction::Meter(_) => (ofpit::METER, None),
        };
        w.u16(ty);
        let at = w.len_placeholder();
        match self {
            Instruction::GotoTable(table) => {
                w.u8(*table);
                w.zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                w.zeros(4);
                w.u64(*metadata);
                w.u64(*mask);
            }
            Instruction::Meter(id) => w.u32(*id),
            _ => w.zeros(4),
        }
        if let Some(actions) = actions {
            Action::encode_list(actions, w);
        }
        w.patch_len(at, start);
    }

    /// Reads the instruction list that fills `bytes`.
    pub(crate) fn decode_list(bytes: &[u8]) -> Result<Vec<Instruction>, OfpError> {
        let mut r = Reader::new(bytes, ErrorKind::BAD_INSTRUCTION_LEN, "instruction");
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Instruction::decode(&mut r)?);
        }
        Ok(out)
    }

    pub(crate) fn encode_list(list: &[Instruction], w: &mut Writer) {
        for i in list {
            i.encode(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::hex;

    #[test]
    fn write_metadata_and_meter_layouts() {
        for (i, want) in [
            (
                Instruction::WriteMetadata {
                    metadata: 0xab00,
                    mask: 0xff00,
                },
                "00 02 00 18 00 00 00 00 00 00 00 00 00 00 ab 00 00 00 00 00 00 00 ff 00",
            ),
            (Instruction::Meter(1), "00 06 00 08 00 00 00 01"),
        ] {
            let mut w = Writer::default();
            Instruction::encode_list(std::slice::from_ref(&i), &mut w);
            assert_eq!(w.buf, hex(want), "{i:?}");
            assert_eq!(Instruction::decode_list(&hex(want)), Ok(vec![i]));
        }
    }
}

//! Weight and state slot tables of a plan set (shared by its phases).
//!
//! A slot is a tensor as one device sees it. Slots are created on first use, in
//! schedule order (decode first), so the tables are deterministic. Expert tensors
//! get one slot per device holding that device's shard `[e0, e1)` and its bytes;
//! shared state (RoPE tables) one slot per device that uses it.

use crate::place::shard_range;
use ds4_ir::expanded::{Expanded, InitInst, RowsInst};
use std::collections::HashMap;

/// A weight as one device holds it.
#[derive(Debug, Clone)]
pub struct WeightSlot {
    pub gguf: String,
    pub ggml_type: u32,
    pub dims: Vec<i64>,
    pub optional: bool,
    pub device: u8,
    pub experts: Option<(u32, u32)>,
    pub bytes: u64,
}

/// A state tensor on one device.
#[derive(Debug, Clone)]
pub struct StateSlot {
    pub name: String,
    pub layer: Option<u16>,
    pub device: u8,
    pub width: usize,
    pub rows: RowsInst,
    pub init: InitInst,
}

impl StateSlot {
    /// f32 bytes at context `ctx`.
    pub fn bytes(&self, ctx: usize) -> u64 {
        let rows = match self.rows {
            RowsInst::Fixed(n) => n,
            RowsInst::PerCtx { div, add } => ctx / div + add,
        };
        (rows * self.width * 4) as u64
    }
}

/// The slot tables and their lookup keys.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub weights: Vec<WeightSlot>,
    pub states: Vec<StateSlot>,
    wmap: HashMap<(String, u8), u32>,
    smap: HashMap<(String, Option<u16>, u8), u32>,
}

impl Slots {
    /// Slot of weight instance `w` of `g` on device `dev`.
    pub fn weight(&mut self, g: &Expanded, w: usize, dev: u8, devices: u8) -> u32 {
        let inst = &g.weights[w];
        let key = (inst.gguf.clone(), dev);
        if let Some(&i) = self.wmap.get(&key) {
            return i;
        }
        let (experts, bytes) = if inst.experts {
            let ne = inst.dims.last().copied().unwrap_or(1).max(1) as u32;
            let (e0, e1) = if devices > 1 {
                shard_range(ne, dev, devices)
            } else {
                (0, ne)
            };
            let per = inst.bytes() / ne as u64;
            (Some((e0, e1)), per * (e1 - e0) as u64)
        } else {
            (None, inst.bytes())
        };
        let i = self.weights.len() as u32;
        self.weights.push(WeightSlot {
            gguf: inst.gguf.clone(),
            ggml_type: inst.ty.id(),
            dims: inst.dims.clone(),
            optional: inst.optional,
            device: dev,
            experts,
            bytes,
        });
        self.wmap.insert(key, i);
        i
    }

    /// Slot of state instance `s` of `g` on device `dev`.
    pub fn state(&mut self, g: &Expanded, s: usize, dev: u8) -> u32 {
        let inst = &g.states[s];
        let key = (inst.name.clone(), inst.layer, dev);
        if let Some(&i) = self.smap.get(&key) {
            return i;
        }
        let i = self.states.len() as u32;
        self.states.push(StateSlot {
            name: inst.name.clone(),
            layer: inst.layer,
            device: dev,
            width: inst.width,
            rows: inst.rows,
            init: inst.init,
        });
        self.smap.insert(key, i);
        i
    }

    /// Weight bytes per device.
    pub fn weight_bytes(&self, devices: u8) -> Vec<u64> {
        let mut b = vec![0u64; devices as usize];
        for w in &self.weights {
            b[w.device as usize] += w.bytes;
        }
        b
    }

    /// State bytes per device at context `ctx`.
    pub fn state_bytes(&self, devices: u8, ctx: usize) -> Vec<u64> {
        let mut b = vec![0u64; devices as usize];
        for s in &self.states {
            b[s.device as usize] += s.bytes(ctx);
        }
        b
    }
}

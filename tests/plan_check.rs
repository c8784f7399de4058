//! An independent checker of the generated plans.
//!
//! It runs every plan function of `PLAN_SETS` against a recording executor and
//! re-derives, from the recorded calls alone (not from the compiler's data): that
//! no two buffers live at the same time overlap; that every kernel input is
//! written before it is read, on the launch's device; that every copy moves a
//! value written on its source device after a sync of that device, into a buffer
//! of the same shape that the destination device then reads; that every launched
//! kernel has an AscendC entry stub; that arenas stay within 1.10 × the max-live
//! lower bound; that fused decode plans launch at least 40% fewer kernels per
//! layer than unfused ones; and that `flash` fits 42.7 GiB per device at ctx 32768.

use ds4_rs::plans::PLAN_SETS;
use ds4_runtime::plan::{Arg, Buf, Executor, Kernel, Launch, PhasePlan, PlanSet, StageTap};
use std::collections::HashMap;

enum Ev {
    Launch(&'static Launch),
    Copy(Buf, Buf, bool),
    Sync(u8),
    Stage(&'static StageTap),
}

#[derive(Default)]
struct Recorder(Vec<Ev>);

impl Executor for Recorder {
    fn launch(&mut self, l: &'static Launch) {
        self.0.push(Ev::Launch(l));
    }
    fn copy(&mut self, src: Buf, dst: Buf, one_row: bool) {
        self.0.push(Ev::Copy(src, dst, one_row));
    }
    fn sync(&mut self, dev: u8) {
        self.0.push(Ev::Sync(dev));
    }
    fn stage(&mut self, tap: &'static StageTap) {
        self.0.push(Ev::Stage(tap));
    }
}

/// Outputs of a primitive kernel (docs/OPS.md), the last args of a launch.
fn n_outputs(k: Kernel) -> usize {
    use Kernel::*;
    match k {
        KvPushRaw | CompressorUpdate => 0,
        HcSplit => 3,
        RouterTopk | RouterHash | MoeGateUp => 2,
        _ => 1,
    }
}

type Key = (u8, usize, usize, usize, ds4_runtime::plan::DType);

fn key(b: &Buf) -> Key {
    (b.dev, b.offset, b.row_bytes, b.width, b.dtype)
}

/// One write of a buffer and how long it is read.
struct Instance {
    key: Key,
    bytes: usize,
    written: usize,
    last_read: usize,
}

struct Checker<'a> {
    set: &'a PlanSet,
    what: String,
    rows: usize,
    tick: usize,
    inst: Vec<Instance>,
    latest: HashMap<Key, usize>,
    dirty: Vec<bool>,
    copied_unread: HashMap<Key, usize>,
    launches: usize,
}

const ALIGN: usize = 64;

impl Checker<'_> {
    fn fail(&self, msg: String) -> ! {
        panic!("{}: {msg}", self.what)
    }

    fn write(&mut self, b: &Buf, one_row: bool) {
        let rows = if one_row { 1 } else { self.rows };
        let bytes = (rows * b.row_bytes).div_ceil(ALIGN) * ALIGN;
        let i = self.inst.len();
        self.inst.push(Instance {
            key: key(b),
            bytes,
            written: self.tick,
            last_read: self.tick,
        });
        self.latest.insert(key(b), i);
    }

    fn read(&mut self, b: &Buf, dev: u8, who: &str) {
        if b.dev != dev {
            self.fail(format!(
                "{who} on device {dev} reads a buffer of device {}",
                b.dev
            ));
        }
        match self.latest.get(&key(b)) {
            Some(&i) => self.inst[i].last_read = self.tick,
            None => self.fail(format!("{who} reads {b:?} before anything writes it")),
        }
        self.copied_unread.remove(&key(b));
    }

    /// A primitive launch, or one part of a fused launch. A fused launch is one
    /// step in time: all of its parts' buffers are live for the whole launch (a
    /// native fused kernel may hold them all at once).
    fn primitive(&mut self, l: &Launch, part: bool) {
        if !part {
            self.tick += 1;
        }
        if l.kernel.is_fused() || !l.parts.is_empty() {
            self.fail(format!("{:?} is not a primitive part", l.kernel));
        }
        let n_out = n_outputs(l.kernel);
        let split = l
            .args
            .len()
            .checked_sub(n_out)
            .unwrap_or_else(|| self.fail(format!("{:?}: too few args", l.kernel)));
        let who = format!("{:?}", l.kernel);
        for a in &l.args[..split] {
            match a {
                Arg::Buf(b) => self.read(b, l.device, &who),
                Arg::Weight(w) => {
                    let slot = &self.set.weights[*w as usize];
                    if slot.device != l.device {
                        self.fail(format!(
                            "{who} on device {} reads weight {} of device {}",
                            l.device, slot.gguf_name, slot.device
                        ));
                    }
                }
                Arg::State(s) => {
                    let slot = &self.set.states[*s as usize];
                    if slot.device != l.device {
                        self.fail(format!(
                            "{who} on device {} uses state {} of device {}",
                            l.device, slot.name, slot.device
                        ));
                    }
                }
                Arg::Tokens | Arg::Pos => {}
            }
        }
        // `take_last` reads the chunk and writes one row.
        let one_row = l.one_row || l.kernel == Kernel::TakeLast;
        for a in &l.args[split..] {
            match a {
                Arg::Buf(b) if b.dev == l.device => self.write(b, one_row),
                _ => self.fail(format!("{who}: an output is not a buffer of its device")),
            }
        }
    }

    fn launch(&mut self, l: &'static Launch) {
        self.launches += 1;
        self.dirty[l.device as usize] = true;
        // The device library has a kernel for the launch (primitive or part sequence).
        let parts: Vec<&str> = l.parts.iter().map(|p| p.kernel.op_name()).collect();
        if ds4_runtime::ascend::kernels::find(l.kernel.op_name(), &parts).is_none() {
            self.fail(format!(
                "no AscendC kernel for {} {parts:?}",
                l.kernel.op_name()
            ));
        }
        if !l.kernel.is_fused() {
            return self.primitive(l, false);
        }
        if l.parts.len() < 2 {
            self.fail(format!("fused {:?} without parts", l.kernel));
        }
        // Every fused arg is an operand of some part, on the launch's device.
        for a in l.args {
            let used = l.parts.iter().any(|p| p.args.contains(a));
            if !used {
                self.fail(format!(
                    "fused {:?} passes {a:?}, which no part uses",
                    l.kernel
                ));
            }
        }
        self.tick += 1;
        for p in l.parts {
            if p.device != l.device {
                self.fail(format!(
                    "part {:?} of {:?} on another device",
                    p.kernel, l.kernel
                ));
            }
            self.primitive(p, true);
        }
    }

    fn run(&mut self, events: &[Ev]) {
        for ev in events {
            match ev {
                Ev::Launch(l) => self.launch(l),
                Ev::Sync(d) => self.dirty[*d as usize] = false,
                Ev::Copy(src, dst, one_row) => {
                    self.tick += 1;
                    if src.dev == dst.dev {
                        self.fail(format!("copy within device {}", src.dev));
                    }
                    if (src.row_bytes, src.width, src.dtype)
                        != (dst.row_bytes, dst.width, dst.dtype)
                    {
                        self.fail(format!("copy changes shape: {src:?} -> {dst:?}"));
                    }
                    if self.dirty[src.dev as usize] {
                        self.fail(format!(
                            "copy from device {} without a sync after its last launch",
                            src.dev
                        ));
                    }
                    self.read(src, src.dev, "copy");
                    self.write(dst, *one_row);
                    self.copied_unread.insert(key(dst), self.tick);
                }
                Ev::Stage(t) => {
                    let b = t.buf;
                    self.read(&b, b.dev, &format!("stage {}", t.name));
                }
            }
        }
        if let Some(k) = self.copied_unread.keys().next() {
            self.fail(format!("a copy into {k:?} is never read on its device"));
        }
    }

    /// Overlap of live instances, and the max-live bound per device.
    fn check_memory(&mut self, phase: &PhasePlan) {
        let end = self.tick + 1;
        if let Some(l) = phase.logits {
            match self.latest.get(&key(&l)) {
                Some(&i) => self.inst[i].last_read = end,
                None => self.fail("the logits are never written".into()),
            }
        }
        let mut order: Vec<usize> = (0..self.inst.len()).collect();
        order.sort_by_key(|&i| self.inst[i].written);
        let mut active: Vec<usize> = Vec::new();
        let devs = self.set.devices as usize;
        let mut live = vec![0usize; devs];
        let mut peak = vec![0usize; devs];
        for &i in &order {
            let a = &self.inst[i];
            active.retain(|&j| {
                let keep = self.inst[j].last_read >= a.written;
                if !keep {
                    live[self.inst[j].key.0 as usize] -= self.inst[j].bytes;
                }
                keep
            });
            for &j in &active {
                let b = &self.inst[j];
                let same_dev = a.key.0 == b.key.0;
                let (a0, b0) = (a.key.1, b.key.1);
                if same_dev && a0 < b0 + b.bytes && b0 < a0 + a.bytes {
                    self.fail(format!(
                        "buffers {:?} and {:?} overlap while both are live",
                        a.key, b.key
                    ));
                }
            }
            let d = a.key.0 as usize;
            if a.key.1 + a.bytes > phase.arena_bytes[d] {
                self.fail(format!(
                    "buffer {:?} ends past the arena of device {d}",
                    a.key
                ));
            }
            active.push(i);
            live[d] += a.bytes;
            peak[d] = peak[d].max(live[d]);
        }
        for (d, &max_live) in peak.iter().enumerate().take(devs) {
            if phase.arena_bytes[d] as f64 > 1.10 * max_live as f64 {
                self.fail(format!(
                    "arena {} > 1.10 x max-live {max_live} on device {d}",
                    phase.arena_bytes[d]
                ));
            }
        }
    }
}

fn check_phase(set: &'static PlanSet, phase: &'static PhasePlan, rows: usize) {
    let mut rec = Recorder::default();
    (phase.run)(&mut rec);
    let mut c = Checker {
        set,
        what: format!(
            "{} d{} fused={} {:?}",
            set.profile.name, set.devices, set.fused, phase.phase
        ),
        rows,
        tick: 0,
        inst: Vec::new(),
        latest: HashMap::new(),
        dirty: vec![false; set.devices as usize],
        copied_unread: HashMap::new(),
        launches: 0,
    };
    c.run(&rec.0);
    assert_eq!(c.launches, phase.launches, "{}: launch count", c.what);
    c.check_memory(phase);
}

#[test]
fn every_plan_passes_the_checker() {
    assert!(PLAN_SETS.len() >= 8);
    for set in PLAN_SETS {
        check_phase(set, &set.decode, 1);
        check_phase(set, &set.prefill, set.profile.chunk);
        let mut rec = Recorder::default();
        (set.init.run)(&mut rec);
        assert!(
            rec.0.is_empty(),
            "init launches nothing: the runtime builds state from StateSlot::init"
        );
    }
}

#[test]
fn every_profile_has_every_plan_set() {
    for p in ["tiny", "flash4", "flash"] {
        for d in [1u8, 2] {
            for f in [true, false] {
                assert!(
                    PLAN_SETS
                        .iter()
                        .any(|s| s.profile.name == p && s.devices == d && s.fused == f),
                    "missing {p} d{d} fused={f}"
                );
            }
        }
    }
}

fn per_layer(set: &PlanSet) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_str(set.summary_json).expect("summary is JSON");
    v["decode"]["launches_per_layer"]
        .as_array()
        .expect("per-layer launches")
        .iter()
        .filter_map(|x| x.as_u64())
        .collect()
}

#[test]
fn fused_decode_launches_at_least_40_percent_fewer_kernels_per_layer() {
    for f in PLAN_SETS.iter().filter(|s| s.fused) {
        let u = PLAN_SETS
            .iter()
            .find(|u| !u.fused && u.profile.name == f.profile.name && u.devices == f.devices)
            .expect("unfused twin");
        let (fl, ul) = (per_layer(f), per_layer(u));
        assert_eq!(fl.len(), f.profile.compress_ratios.len());
        for (il, (a, b)) in fl.iter().zip(&ul).enumerate() {
            assert!(
                *a as f64 <= 0.6 * *b as f64,
                "{} d{} layer {il}: fused {a} vs unfused {b}",
                f.profile.name,
                f.devices
            );
        }
        assert!(f.decode.launches as f64 <= 0.6 * u.decode.launches as f64);
    }
}

#[test]
fn flash_fits_one_310p_chip_per_device_at_ctx_32768() {
    let budget = (42.7 * (1u64 << 30) as f64) as u64;
    for set in PLAN_SETS
        .iter()
        .filter(|s| s.profile.name == "flash" && s.devices == 2)
    {
        for d in 0..2u8 {
            let w: u64 = set
                .weights
                .iter()
                .filter(|w| w.device == d)
                .map(|w| w.bytes)
                .sum();
            let s: u64 = set
                .states
                .iter()
                .filter(|s| s.device == d)
                .map(|s| (s.rows.at(32768) * s.width * 4) as u64)
                .sum();
            let a =
                set.decode.arena_bytes[d as usize].max(set.prefill.arena_bytes[d as usize]) as u64;
            assert!(
                w + s + a <= budget,
                "flash fused={} device {d}: {} bytes",
                set.fused,
                w + s + a
            );
        }
    }
}

#[test]
fn expert_shards_split_by_expert_id() {
    for set in PLAN_SETS.iter().filter(|s| s.devices == 2) {
        let ne = set
            .profile
            .symbols
            .iter()
            .find(|s| s.0 == "NE")
            .map(|s| s.1 as u32)
            .expect("NE");
        for w in set.weights.iter().filter(|w| w.experts.is_some()) {
            let want = if w.device == 0 {
                (0, ne / 2)
            } else {
                (ne / 2, ne)
            };
            assert_eq!(w.experts, Some(want), "{}", w.gguf_name);
        }
    }
}

//! A session: one conversation's state and the plans that advance it.
//!
//! A session owns the persistent state (KV ring, compressed rows, indexer rows,
//! compressor windows, RoPE tables) and one set of arenas per phase. `prefill`
//! feeds a run of tokens through the prefill plan in chunks of at most the
//! profile's chunk size; `decode` feeds one token through the decode plan. Both
//! return the logits of the last token fed. Positions only grow; a session that
//! would pass its context size refuses before doing any work.

use crate::exec::arena::Arena;
use crate::exec::stages::StageDumper;
use crate::exec::state::SessionState;
use crate::exec::CpuExecutor;
use crate::model::Model;
use crate::plan::{Phase, PhasePlan, PlanSet};

/// Why a session step failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "the prompt needs {need} positions but the context holds {ctx}; \
         shorten the prompt or raise -c/--ctx"
    )]
    ContextFull { need: usize, ctx: usize },
    #[error("{0}")]
    Kernel(String),
    #[error("{0}")]
    Model(#[from] crate::model::ModelError),
}

/// One conversation on the CPU backend.
pub struct Session<'m> {
    model: &'m Model,
    plans: &'static PlanSet,
    weights: Vec<Option<usize>>,
    state: SessionState,
    decode_arenas: Vec<Arena>,
    prefill_arenas: Vec<Arena>,
    pos: usize,
    chunk: usize,
    stages: Option<StageDumper>,
    logits: Vec<f32>,
}

fn arenas(plan: &PhasePlan) -> Vec<Arena> {
    plan.arena_bytes.iter().map(|b| Arena::new(*b)).collect()
}

impl<'m> Session<'m> {
    /// A new session of `ctx` tokens over `model` with `plans` (which must be a plan
    /// set of the model's profile). `chunk` caps the prefill chunk (default: the
    /// profile's).
    pub fn new(
        model: &'m Model,
        plans: &'static PlanSet,
        ctx: usize,
        chunk: Option<usize>,
    ) -> Result<Self, SessionError> {
        let weights = model.bind(plans)?;
        let max_chunk = plans.profile.chunk;
        let chunk = chunk.unwrap_or(max_chunk).clamp(1, max_chunk);
        Ok(Session {
            model,
            plans,
            weights,
            state: SessionState::new(plans.states, ctx).map_err(SessionError::Kernel)?,
            decode_arenas: arenas(&plans.decode),
            prefill_arenas: arenas(&plans.prefill),
            pos: 0,
            chunk,
            stages: None,
            logits: vec![0.0; plans.profile.vocab],
        })
    }

    /// Dumps every stage tap into `dir` from now on.
    pub fn dump_stages(&mut self, dir: std::path::PathBuf) -> std::io::Result<()> {
        self.stages = Some(StageDumper::new(dir)?);
        Ok(())
    }

    /// Tokens fed so far (the position of the next token).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The context size.
    pub fn ctx(&self) -> usize {
        self.state.ctx
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.state.reset(self.plans.states);
        self.pos = 0;
    }

    /// The logits of the last token fed.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Fails unless `n` more tokens fit in the context.
    pub fn check_room(&self, n: usize) -> Result<(), SessionError> {
        let need = self.pos + n;
        if need > self.state.ctx {
            return Err(SessionError::ContextFull {
                need,
                ctx: self.state.ctx,
            });
        }
        Ok(())
    }

    /// Feeds `tokens` through the prefill plan, chunk by chunk.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<&[f32], SessionError> {
        self.check_room(tokens.len())?;
        for chunk in tokens.chunks(self.chunk) {
            self.run(Phase::Prefill, chunk)?;
        }
        Ok(&self.logits)
    }

    /// Feeds one token through the decode plan.
    pub fn decode(&mut self, token: u32) -> Result<&[f32], SessionError> {
        self.check_room(1)?;
        self.run(Phase::Decode, &[token])?;
        Ok(&self.logits)
    }

    fn run(&mut self, phase: Phase, tokens: &[u32]) -> Result<(), SessionError> {
        let (plan, arenas) = match phase {
            Phase::Decode => (&self.plans.decode, &mut self.decode_arenas),
            _ => (&self.plans.prefill, &mut self.prefill_arenas),
        };
        if let Some(d) = self.stages.as_mut() {
            d.phase = phase;
        }
        let ex = CpuExecutor {
            plans: self.plans,
            file: &self.model.file,
            weights: &self.weights,
            arenas,
            state: &mut self.state,
            tokens,
            pos0: self.pos,
            stages: self.stages.as_mut(),
            error: None,
        };
        ex.run(plan).map_err(SessionError::Kernel)?;
        self.pos += tokens.len();

        if let Some(b) = plan.logits {
            let arena = &arenas[b.dev as usize];
            // SAFETY: the run is over; nothing else views the arena now.
            let row: &[f32] = unsafe { arena.view(&b, 1) };
            let n = self.logits.len().min(row.len());
            self.logits[..n].copy_from_slice(&row[..n]);
        }
        Ok(())
    }
}

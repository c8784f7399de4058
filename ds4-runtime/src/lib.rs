//! ds4-runtime: everything that happens after `cargo build` has compiled the graph.
//!
//! Data flows through the modules in this order: [`gguf`] maps a model file and
//! exposes its metadata and tensors zero-copy; [`quant`] knows the block formats
//! those tensors are stored in and their dot products; [`tokenizer`] and [`chat`]
//! turn a prompt into token ids; [`plan`] describes the generated launch sequences
//! and [`cpu`] holds the model kernels they call; [`sampler`] picks the next token.
//! [`model`] checks a file against the compiled profiles, [`exec`] runs a plan on
//! the CPU and [`session`] keeps a conversation's state between runs.
//! [`synth`] writes the synthetic DS4-layout models the tests run on.

pub mod acl;
pub mod ascend;
pub mod backend;
pub mod chat;
pub mod cpu;
pub mod exec;
pub mod gguf;
pub mod inspect;
pub mod model;
pub mod plan;
pub mod quant;
pub mod sampler;
pub mod session;
pub mod synth;
pub mod tokenizer;

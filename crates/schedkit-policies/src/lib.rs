//! The scheduling policies shipped with schedkit.
//!
//! - [`fifo`]: first in, first out; the minimal example and the tutorial.
//! - [`rustland`]: earliest deadline first from vruntime and voluntary context-switch
//!   rate; the one to run on a desktop under load.
//!
//! [`by_name`] builds one from its command-line name.

pub mod fifo;

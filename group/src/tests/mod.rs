//! Tests of the state machine with logical time: no sockets, no clock, no tasks.

mod encode;
mod harness;
mod load;
mod offsets;
mod rebalance;
mod static_members;

//! Operating tier: the binaries as a user runs them.

mod binaries;
mod budget;
mod logs;
mod payload_codec;
mod scale;
mod webui;

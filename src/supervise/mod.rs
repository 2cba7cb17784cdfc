//! Keeping the daemon running, from outside it: the PID file and its lock ([`pidfile`]),
//! starting `reportd run` detached and signalling it ([`process`]), asking it over HTTP how
//! it is ([`probe`]), the restart policy of `reportd monitor` ([`monitor`]), and the systemd
//! notify protocol the daemon speaks when systemd runs it ([`systemd`]).

pub mod monitor;
pub mod pidfile;
pub mod probe;
pub mod process;
pub mod systemd;

//! Who runs an execution: this daemon's name in executions, claims and export jobs
//! (`host:pid`), and whether the daemon behind another such name is known to be gone.

use crate::export::temp;

/// This host's name, read once.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

/// This daemon's name in claims and executions: `host:pid`.
pub fn instance_name() -> String {
    format!("{}:{}", host(), std::process::id())
}

/// True when `instance` runs on this host.
pub fn on_this_host(instance: &str) -> bool {
    instance.rsplit_once(':').is_some_and(|(h, _)| h == host())
}

/// True when `instance` is a process of this host that is gone.
pub fn dead_here(instance: &str) -> bool {
    on_this_host(instance)
        && instance.rsplit_once(':').is_some_and(|(_, pid)| {
            pid.parse::<u32>()
                .is_ok_and(|p| p != std::process::id() && !temp::process_alive(p))
        })
}

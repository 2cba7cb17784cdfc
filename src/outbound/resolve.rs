//! The resolver of a checked client: the system's resolver, then the policy over every
//! address; the client connects only to the addresses returned here.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::Policy;

/// Resolves through the system (getaddrinfo), refusing a name with any internal address.
pub(super) struct Checked {
    policy: Arc<Policy>,
}

impl Checked {
    pub(super) fn new(policy: Arc<Policy>) -> Checked {
        Checked { policy }
    }
}

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            policy.check_resolved(&host, &addrs)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

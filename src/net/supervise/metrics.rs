//! `sas_supervisor_actions_total{action}`: supervisors' actions done (audited), by action.
//! Refused actions are not counted. The label is one of [`ACTIONS`] (else `other`), so its
//! cardinality stays bounded whatever an audit name becomes; every series is shown from
//! the start, at 0, so a rate over it needs no first action.

use prometheus::{IntCounterVec, Opts, Registry};

/// The actions counted, as the label spells them (the audit name without `call.`/`seat.`).
pub const ACTIONS: [&str; 9] = [
    "listen",
    "whisper",
    "barge",
    "monitor_stop",
    "takeover",
    "move",
    "unpause",
    "logout",
    "reset",
];

/// The counter, registered with the router's registry.
#[derive(Clone)]
pub struct SupervisorActions {
    total: IntCounterVec,
}

impl SupervisorActions {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let total = IntCounterVec::new(
            Opts::new(
                "supervisor_actions_total",
                "Supervisors' actions done (listen, whisper, barge, take over, move, unpause, \
                 log out, reset…), by action",
            ),
            &["action"],
        )?;
        registry.register(Box::new(total.clone()))?;
        for action in ACTIONS {
            total.with_label_values(&[action]);
        }
        Ok(Self { total })
    }

    /// Counts the action audited as `audited` (`call.listen`, `seat.reset`…).
    pub fn count(&self, audited: &str) {
        self.total.with_label_values(&[label(audited)]).inc();
    }
}

/// The label of an audit name: its last part if it is one of [`ACTIONS`], else `other`.
fn label(audited: &str) -> &'static str {
    let name = audited.rsplit('.').next().unwrap_or(audited);
    ACTIONS.into_iter().find(|a| *a == name).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_counted_under_a_bounded_label() {
        let registry = Registry::new_custom(Some("sas".into()), None).unwrap();
        let metrics = SupervisorActions::register(&registry).unwrap();
        metrics.count("call.listen");
        metrics.count("call.listen");
        metrics.count("seat.reset");
        metrics.count("call.something_new");
        let get = |action: &str| metrics.total.with_label_values(&[action]).get();
        assert_eq!((get("listen"), get("reset"), get("other")), (2, 1, 1));
        // Every action is a series from the start.
        let families = registry.gather();
        let family = families
            .iter()
            .find(|f| f.name() == "sas_supervisor_actions_total")
            .unwrap();
        assert_eq!(family.get_metric().len(), ACTIONS.len() + 1);
    }
}

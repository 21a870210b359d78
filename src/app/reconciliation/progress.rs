//! Progress of one reconciliation run. A run can take minutes (a large statement, a thousand
//! confirming queries), so it says which phase it is in as it goes; what to show is the
//! caller's business: the CLI draws a bar on a terminal, the gRPC service ignores it.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::domain::reconcile::{Class, Discrepancy, Movement, State};

/// Where a run is, in the order a run passes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcilePhase {
    /// Reading finance's statement file, or (`downloading`) fetching it from the gateway.
    FetchingStatement {
        downloading: bool,
    },
    /// The same statement (by its SHA-256) was recorded before: its run is returned, nothing
    /// else happens.
    AlreadyRecorded,
    ParsingStatement,
    /// Loading our ledger; the statement is parsed at the same time, so this follows
    /// `ParsingStatement` at once.
    LoadingLedger,
    Matching,
    /// Gateway queries about payments one side is missing: `done` of `total` so far.
    Confirming {
        done: usize,
        total: usize,
    },
    Recording,
}

/// The callback a run reports to; `Sync` so a run stays a `Send` future.
pub type OnPhase<'a> = &'a (dyn Fn(ReconcilePhase) + Sync);

/// For callers that show nothing.
pub fn ignore(_: ReconcilePhase) {}

/// Counts the confirming queries of one run as they are made.
pub(super) struct Confirming<'a> {
    total: usize,
    done: AtomicUsize,
    on_phase: OnPhase<'a>,
}

impl<'a> Confirming<'a> {
    /// Announces the phase with its total: the open GATEWAY_ONLY and LEDGER_ONLY payments,
    /// each class capped at `per_class_max`, as `repairs` and `ledger_only_notes` pick them.
    pub(super) fn start(
        discrepancies: &[Discrepancy],
        per_class_max: usize,
        on_phase: OnPhase<'a>,
    ) -> Self {
        let total = [Class::GatewayOnly, Class::LedgerOnly]
            .into_iter()
            .map(|class| {
                discrepancies
                    .iter()
                    .filter(|d| {
                        d.class == class
                            && d.movement == Movement::Payment
                            && d.state == State::Open
                    })
                    .count()
                    .min(per_class_max)
            })
            .sum();
        on_phase(ReconcilePhase::Confirming { done: 0, total });
        Self {
            total,
            done: AtomicUsize::new(0),
            on_phase,
        }
    }

    /// One more candidate handled.
    pub(super) fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        (self.on_phase)(ReconcilePhase::Confirming {
            done: done.min(self.total),
            total: self.total,
        });
    }
}

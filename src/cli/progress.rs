//! Showing a reconciliation run's phases: a progress bar when stderr is a terminal, plain
//! one-line-per-phase messages otherwise, so logs and CI never get escape codes. The phases
//! come from the app layer (`ReconcilePhase`); only their rendering lives here.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::reconciliation::ReconcilePhase;

/// Phases a run that records something passes (fetch, parse, ledger, match, confirm, record).
const PHASE_COUNT: u64 = 6;

const SPINNER_TICK: Duration = Duration::from_millis(120);

/// Renders one run's phases on stderr.
pub struct PhaseDisplay {
    /// `channel date`, in front of every message.
    label: String,
    /// Present when stderr is a terminal.
    bar: Option<ProgressBar>,
}

impl PhaseDisplay {
    pub fn on_stderr(channel: &str, date: &str) -> Self {
        let label = format!("{} {date}", channel.to_ascii_uppercase());
        let bar = std::io::stderr().is_terminal().then(|| bar(&label));
        Self { label, bar }
    }

    pub fn show(&self, phase: ReconcilePhase) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(step(phase));
                bar.set_message(describe(phase));
            }
            None if is_milestone(phase) => {
                eprintln!("reconcile {}: {}", self.label, describe(phase));
            }
            None => {}
        }
    }

    /// Removes the bar so the summary that follows starts on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(PHASE_COUNT).with_prefix(label.to_owned());
    // The template is a constant; should it ever fail to parse, the default style still works.
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {prefix} [{bar:24}] {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(SPINNER_TICK);
    bar
}

/// Position of the phase on the bar (1-based; a recorded run ends at `PHASE_COUNT`).
fn step(phase: ReconcilePhase) -> u64 {
    match phase {
        ReconcilePhase::FetchingStatement { .. } => 1,
        ReconcilePhase::ParsingStatement => 2,
        ReconcilePhase::LoadingLedger => 3,
        ReconcilePhase::Matching => 4,
        ReconcilePhase::Confirming { .. } => 5,
        ReconcilePhase::AlreadyRecorded | ReconcilePhase::Recording => PHASE_COUNT,
    }
}

/// Plain output prints phase changes only, not every confirming query.
fn is_milestone(phase: ReconcilePhase) -> bool {
    match phase {
        ReconcilePhase::Confirming { done, total } => done == 0 && total > 0,
        _ => true,
    }
}

fn describe(phase: ReconcilePhase) -> String {
    match phase {
        ReconcilePhase::FetchingStatement { downloading: true } => {
            "downloading the statement".to_owned()
        }
        ReconcilePhase::FetchingStatement { downloading: false } => {
            "reading the statement file".to_owned()
        }
        ReconcilePhase::ParsingStatement => "parsing the statement".to_owned(),
        ReconcilePhase::AlreadyRecorded => {
            "this statement was reconciled before; showing that run".to_owned()
        }
        ReconcilePhase::LoadingLedger => "loading our payments".to_owned(),
        ReconcilePhase::Matching => "matching".to_owned(),
        ReconcilePhase::Confirming { done: 0, total } => {
            format!("confirming {total} payments with the gateway")
        }
        ReconcilePhase::Confirming { done, total } => {
            format!("confirming with the gateway: {done} of {total}")
        }
        ReconcilePhase::Recording => "recording the run".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_names_each_phase_once_and_not_each_query() {
        let confirming = |done| ReconcilePhase::Confirming { done, total: 3 };
        assert!(is_milestone(confirming(0)));
        assert!(!is_milestone(confirming(1)));
        assert!(!is_milestone(ReconcilePhase::Confirming {
            done: 0,
            total: 0
        }));
        assert!(is_milestone(ReconcilePhase::Recording));
        assert_eq!(
            describe(confirming(2)),
            "confirming with the gateway: 2 of 3"
        );
    }

    #[test]
    fn the_bar_advances_through_the_phases_in_order() {
        let phases = [
            ReconcilePhase::FetchingStatement { downloading: true },
            ReconcilePhase::ParsingStatement,
            ReconcilePhase::LoadingLedger,
            ReconcilePhase::Matching,
            ReconcilePhase::Confirming { done: 1, total: 2 },
            ReconcilePhase::Recording,
        ];
        let steps: Vec<u64> = phases.into_iter().map(step).collect();
        assert_eq!(steps, [1, 2, 3, 4, 5, PHASE_COUNT]);
    }
}

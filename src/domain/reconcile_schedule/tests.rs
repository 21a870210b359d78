#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn at(date: &str, time: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// The defaults: from 10:30, retry every ten minutes, give up at 18:00.
fn schedule() -> Schedule {
    Schedule::new("10:30".parse().unwrap(), "18:00".parse().unwrap(), 600).unwrap()
}

#[test]
fn a_time_of_day_is_hh_mm_on_a_24_hour_clock() {
    for (text, shown) in [("10:30", "10:30"), ("00:00", "00:00"), ("23:59", "23:59")] {
        assert_eq!(text.parse::<TimeOfDay>().unwrap().to_string(), shown);
    }
    for text in [
        "25:00", "24:00", "10:60", "1030", "9:30", "10:30:00", "", "ab:cd", "+1:30",
    ] {
        let err = text.parse::<TimeOfDay>().unwrap_err();
        assert_eq!(err, ScheduleError::BadTimeOfDay(text.to_owned()));
        assert!(err.to_string().contains("HH:MM"), "{err}");
    }
}

#[test]
fn a_deadline_before_the_start_or_a_retry_interval_out_of_range_is_refused() {
    let t = |text: &str| text.parse::<TimeOfDay>().unwrap();
    let err = Schedule::new(t("10:30"), t("09:00"), 600).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the deadline 09:00 must be later than the start time 10:30"
    );
    assert!(Schedule::new(t("10:30"), t("10:30"), 600).is_err());
    assert_eq!(
        Schedule::new(t("10:30"), t("18:00"), 0),
        Err(ScheduleError::BadRetryInterval(0))
    );
    assert!(Schedule::new(t("10:30"), t("18:00"), RETRY_EVERY_S_MAX + 1).is_err());
    assert!(Schedule::new(t("10:30"), t("18:00"), RETRY_EVERY_S_MAX).is_ok());
}

#[test]
fn each_instant_gets_one_decision_about_yesterday() {
    let day = "2026-11-29";
    let due = date("2026-11-28");
    let failed = |time| DayStatus::Failed { at: at(day, time) };
    let cases = [
        (
            "08:00",
            DayStatus::NotAttempted,
            Decision::WaitUntil(at(day, "10:30")),
        ),
        (
            "10:30",
            DayStatus::NotAttempted,
            Decision::Run { date: due },
        ),
        (
            "10:31",
            failed("10:30"),
            Decision::RetryAt(at(day, "10:40")),
        ),
        ("10:40", failed("10:30"), Decision::Run { date: due }),
        (
            "17:55",
            failed("17:50"),
            Decision::RetryAt(at(day, "18:00")),
        ),
        ("18:00", failed("17:50"), Decision::GiveUp { date: due }),
        (
            "19:00",
            DayStatus::NotAttempted,
            Decision::GiveUp { date: due },
        ),
        (
            "12:00",
            DayStatus::Recorded,
            Decision::Done {
                until: at("2026-11-30", "10:30"),
            },
        ),
        (
            "08:00",
            DayStatus::Recorded,
            Decision::Done {
                until: at("2026-11-30", "10:30"),
            },
        ),
        (
            "18:30",
            DayStatus::GaveUp,
            Decision::Done {
                until: at("2026-11-30", "10:30"),
            },
        ),
    ];
    for (time, status, expected) in cases {
        assert_eq!(
            decide(at(day, time), &schedule(), status),
            expected,
            "{time} {status:?}"
        );
    }
}

#[test]
fn the_due_day_is_yesterday_across_month_and_year_ends() {
    assert_eq!(due_date(at("2027-01-01", "00:05")), date("2026-12-31"));
    assert_eq!(due_date(at("2026-03-01", "10:30")), date("2026-02-28"));
    assert_eq!(
        decide(
            at("2027-01-01", "11:00"),
            &schedule(),
            DayStatus::NotAttempted
        ),
        Decision::Run {
            date: date("2026-12-31")
        }
    );
}

#[test]
fn a_statement_never_ready_is_retried_until_the_deadline_then_given_up_until_tomorrow() {
    let mut now = at("2026-11-29", "09:00");
    let mut status = DayStatus::NotAttempted;
    let mut attempts = Vec::new();
    for _ in 0..1_000 {
        match decide(now, &schedule(), status) {
            Decision::Run { date } => {
                assert_eq!(date, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
                attempts.push(now.time().to_string());
                status = DayStatus::Failed { at: now };
            }
            Decision::GiveUp { .. } => {
                assert_eq!(now, at("2026-11-29", "18:00"));
                status = DayStatus::GaveUp;
            }
            Decision::Done { until } => {
                assert_eq!(until, at("2026-11-30", "10:30"));
                break;
            }
            waiting => now = waiting.wake_at(now),
        }
    }
    assert_eq!(status, DayStatus::GaveUp);
    assert_eq!(attempts.len(), 45, "10:30 to 17:50 every ten minutes");
    assert_eq!(attempts.first().map(String::as_str), Some("10:30:00"));
    assert_eq!(attempts.last().map(String::as_str), Some("17:50:00"));
}

#[test]
fn a_statement_ready_on_the_second_attempt_is_recorded_once() {
    let mut now = at("2026-11-29", "10:30");
    let first = decide(now, &schedule(), DayStatus::NotAttempted);
    assert!(matches!(first, Decision::Run { .. }));
    let status = DayStatus::Failed { at: now };
    now = decide(now, &schedule(), status).wake_at(now);
    assert_eq!(now, at("2026-11-29", "10:40"));
    assert!(matches!(
        decide(now, &schedule(), status),
        Decision::Run { .. }
    ));
    let after = decide(now, &schedule(), DayStatus::Recorded);
    assert_eq!(
        after,
        Decision::Done {
            until: at("2026-11-30", "10:30")
        }
    );
}

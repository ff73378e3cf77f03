//! Routing owns the dial plans: what happens to a call to an entry number (menus, time
//! conditions, queues, overflow, forwards), loaded from `dialplans/` and validated as a
//! whole before they go live.
//!
//! Sans-IO like the rest of the core (the time to decide for is always an argument); reading
//! the dial plan directory is the app's `routing::files`:
//!
//! - [`holidays`]: public holidays by region, Easter, and [`bridges`] (ponts);
//! - [`parse`]: the admin vocabulary (days, hour ranges, intervals) and its errors;
//! - [`schedule`]: a schedule and its explained decision;
//! - [`builtin`]: the named schedules that ship (`pdsa`, `pdsa_samedi`, `sas_jour`);
//! - [`plan`]: entries of named steps, loaded and validated;
//! - [`flow`]: the interpreter that walks a call through its entry;
//! - [`simulate`]: dry runs of that interpreter (`sas-router simulate`).

pub mod bridges;
pub mod builtin;
mod explain;
pub mod flow;
pub mod holidays;
pub mod parse;
pub mod plan;
pub mod schedule;
pub mod simulate;

pub use bridges::{Bridge, bridge_day, is_bridge_day};
pub use builtin::{BUILTIN_NAMES, builtin};
pub use holidays::{Holiday, HolidayKind, Region, easter_sunday, holiday, holidays_of};
pub use parse::{DayRule, DaySet, HourRange, LocalInterval, ScheduleError};
pub use schedule::{Decision, Schedule, ScheduleSpec, WeeklyRule, WeeklySpec};

#[cfg(test)]
mod tests;

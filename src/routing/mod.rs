//! Routing owns the dial plans: today the schedules and French public holidays that their
//! time conditions will use; the dial plan model, its validation and its interpreter come
//! next.
//!
//! Sans-IO like the rest of the core: the time to decide for is always an argument, and
//! nothing here reads a clock or a file.
//!
//! - [`holidays`]: public holidays by region, Easter, and [`bridges`] (ponts);
//! - [`parse`]: the admin vocabulary (days, hour ranges, intervals) and its errors;
//! - [`schedule`]: a schedule and its explained decision;
//! - [`builtin`]: the named schedules that ship (`pdsa`, `pdsa_samedi`, `sas_jour`).

pub mod bridges;
pub mod builtin;
mod explain;
pub mod holidays;
pub mod parse;
pub mod schedule;

pub use bridges::{Bridge, bridge_day, is_bridge_day};
pub use builtin::{BUILTIN_NAMES, builtin};
pub use holidays::{Holiday, HolidayKind, Region, easter_sunday, holiday, holidays_of};
pub use parse::{DayRule, DaySet, HourRange, LocalInterval, ScheduleError};
pub use schedule::{Decision, Schedule, ScheduleSpec, WeeklyRule, WeeklySpec};

#[cfg(test)]
mod tests;

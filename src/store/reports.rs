//! Activity reports over the stored records ([`sas_core::report`]). Record keys are call
//! ids, which begin with the UTC time of arrival (`20261123T071502.123Z-0001`): the calls
//! of a period are one range scan of the `calls` tree, so no index of their own is needed.

use super::{Store, StoreError};
use sas_core::ids::CallId;
use sas_core::record::CallRecord;
use sas_core::report::{GroupBy, Period, Report, ReportBuilder};
use sas_core::time::EpochMillis;

impl Store {
    /// The report of the calls that arrived in `period`, grouped `by`.
    pub fn report(&self, period: Period, by: GroupBy) -> Result<Report, StoreError> {
        let mut builder = ReportBuilder::new(period, by);
        let (start, end) = builder.bounds();
        self.each_arrived(start, end, |record| builder.add(&record))?;
        Ok(builder.finish())
    }

    /// Hands `visit` every call that arrived in `[start, end)`, in arrival order (call
    /// ids sort by their arrival time: a range scan, no full read).
    pub fn each_arrived(
        &self,
        start: EpochMillis,
        end: EpochMillis,
        mut visit: impl FnMut(CallRecord),
    ) -> Result<(), StoreError> {
        let range = CallId::stamp(start)..CallId::stamp(end);
        for item in self.calls.range(range) {
            let (_, bytes) = item?;
            visit(serde_json::from_slice(&bytes)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sas_core::pii::CallerNumber;

    #[test]
    fn a_period_reads_its_calls_only_by_their_time_sorted_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // 2026-11-01 00:00 Paris is 2026-10-31T23:00Z.
        let midnight = 1_793_487_600_000;
        for (n, at) in [midnight - 1, midnight, midnight + 86_400_000]
            .iter()
            .enumerate()
        {
            let id = format!("{}-{n:04}", CallId::stamp(*at));
            let record = CallRecord::new(
                id,
                "x".into(),
                "samu".into(),
                "15".into(),
                CallerNumber::new("0612345678"),
                *at,
            );
            store.put_call(&record).unwrap();
        }
        let day = Period::parse("2026-11-01", "2026-11-01").unwrap();
        let report = store.report(day, GroupBy::Line).unwrap();
        assert_eq!(report.total.received, 1);
        let two = Period::parse("2026-10-31", "2026-11-02").unwrap();
        assert_eq!(store.report(two, GroupBy::Day).unwrap().total.received, 3);
    }
}

//! Everything the user sees: the build report (`report.json`), its rendering, and the
//! progress display. Main type: [`BuildReport`].

mod build_report;
mod critical_path;
mod html;
mod miss_cause;
mod progress;
mod render;

pub use crate::key::{DiffKind, Difference, MissCause};
pub use build_report::{BuildReport, KindCounts, Summary, UNTRUSTED_ENTRY, report_path};
pub use html::render_html;
pub use miss_cause::{describe, differences, explain_miss};
pub use progress::{Progress, Verbosity, in_flight_names, progress_counts};
pub use render::{
    SECTIONS, counts, reason_hint, reasons, render_markdown, render_summary_line, render_table,
    render_unit_line, section,
};

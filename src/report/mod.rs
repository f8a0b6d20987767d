//! Everything the user sees: the build report (`report.json`), its rendering, and the
//! progress display. Main type: [`BuildReport`].

mod build_report;
mod progress;
mod render;

pub use build_report::{BuildReport, KindCounts, Summary, UNTRUSTED_ENTRY, report_path};
pub use progress::Progress;
pub use render::{render_summary_line, render_table};

//! A recorder for the `metrics` facade that keeps counters and gauges and renders them in
//! the Prometheus text format, for `GET /metrics`.
//!
//! Written here rather than taken from `metrics-exporter-prometheus`: that crate, even with
//! its HTTP listener off, brings about fifteen crates (evmap, left-right, crossbeam-epoch,
//! quanta, sketches-ddsketch...) for histograms and summaries, which nothing here records.
//! Histograms are accepted and dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// The metrics registered so far. Cheap to clone: every clone is the same registry.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<Metrics>>,
}

#[derive(Default)]
struct Metrics {
    counters: HashMap<Key, Arc<AtomicU64>>,
    /// The value's `f64` bits, as `metrics` stores gauges in an `AtomicU64`.
    gauges: HashMap<Key, Arc<AtomicU64>>,
    help: HashMap<String, String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Metrics> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a clone of this registry the process's recorder; `false` if one was already
    /// installed (then nothing is recorded here).
    pub fn install(&self) -> bool {
        metrics::set_global_recorder(self.clone()).is_ok()
    }

    /// Every metric in the Prometheus text format (version 0.0.4), sorted by name.
    pub fn render(&self) -> String {
        let metrics = self.lock();
        let mut lines: Vec<(String, &'static str, String)> = Vec::new();
        for (key, value) in &metrics.counters {
            lines.push((
                key.name().to_owned(),
                "counter",
                sample(key, value.load(Ordering::Relaxed).to_string()),
            ));
        }
        for (key, value) in &metrics.gauges {
            let value = f64::from_bits(value.load(Ordering::Relaxed));
            lines.push((key.name().to_owned(), "gauge", sample(key, value.to_string())));
        }
        lines.sort();
        let mut text = String::new();
        let mut previous: Option<&str> = None;
        for (name, kind, line) in &lines {
            if previous != Some(name.as_str()) {
                if let Some(help) = metrics.help.get(name) {
                    let _ =
                        writeln!(text, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
                }
                let _ = writeln!(text, "# TYPE {name} {kind}");
                previous = Some(name);
            }
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn describe(&self, key: KeyName, description: SharedString) {
        self.lock().help.insert(key.as_str().to_owned(), description.into_owned());
    }
}

/// `name{label="value",...} value`.
fn sample(key: &Key, value: String) -> String {
    let mut line = key.name().to_owned();
    let mut labels = key.labels().peekable();
    if labels.peek().is_some() {
        line.push('{');
        for (index, label) in labels.enumerate() {
            if index > 0 {
                line.push(',');
            }
            let escaped = label.value().replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let _ = write!(line, "{}=\"{escaped}\"", label.key());
        }
        line.push('}');
    }
    line.push(' ');
    line.push_str(&value);
    line
}

impl Recorder for Registry {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_histogram(&self, _key: KeyName, _unit: Option<Unit>, _description: SharedString) {}

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.lock().counters.entry(key.clone()).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.lock().gauges.entry(key.clone()).or_default().clone())
    }

    fn register_histogram(&self, _key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_with_their_labels_and_help() {
        let registry = Registry::default();
        metrics::with_local_recorder(&registry, || {
            metrics::describe_counter!("a_total", "Things \"done\"");
            metrics::counter!("a_total", "kind" => "x\"y").increment(3);
            metrics::counter!("a_total", "kind" => "z").increment(1);
            metrics::gauge!("b").set(2.5);
        });
        assert_eq!(
            registry.render(),
            "# HELP a_total Things \"done\"\n# TYPE a_total counter\na_total{kind=\"x\\\"y\"} 3\na_total{kind=\"z\"} 1\n# TYPE b gauge\nb 2.5\n"
        );
    }
}

//! Building and registering metrics, one call per metric: the name, the
//! help text and the labels side by side, each handle registered as it is
//! made. A metric that cannot be made or registered (a malformed or
//! repeated name) is a bug: it panics with the metric's name at start, and
//! every test that builds [`super::metrics::Metrics`] finds it.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, core::Collector,
};

/// Registers what it makes in one registry.
pub(crate) struct Registrar {
    registry: Registry,
}

impl Registrar {
    /// A registry of its own.
    pub(crate) fn new() -> Self {
        Self {
            registry: Registry::new(),
        }
    }

    /// The registry (a handle on the same one).
    pub(crate) fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// A counter without labels.
    pub(crate) fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(name, IntCounter::new(name, help))
    }

    /// A gauge without labels.
    pub(crate) fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(name, IntGauge::new(name, help))
    }

    /// A counter with labels.
    pub(crate) fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(name, IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// A gauge with labels.
    pub(crate) fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(name, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// A counter with one label, one handle per value (in the order of
    /// `values`, so an enum's `index` finds its handle), every one at zero.
    pub(crate) fn counter_per<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: [&str; N],
    ) -> [IntCounter; N] {
        let vec = self.counters(name, help, &[label]);
        values.map(|v| vec.with_label_values(&[v]))
    }

    /// A gauge with one label, one handle per value, as [`Self::counter_per`].
    pub(crate) fn gauge_per<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: [&str; N],
    ) -> [IntGauge; N] {
        let vec = self.gauges(name, help, &[label]);
        values.map(|v| vec.with_label_values(&[v]))
    }

    /// A histogram without labels.
    pub(crate) fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(name, Histogram::with_opts(opts))
    }

    /// A histogram with labels.
    pub(crate) fn histograms(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(name, HistogramVec::new(opts, labels))
    }

    /// Registers a collector made elsewhere (the process metrics).
    pub(crate) fn collector(&self, name: &str, collector: Box<dyn Collector>) {
        self.registry
            .register(collector)
            .unwrap_or_else(|e| panic!("metric {name} cannot be registered: {e}"));
    }

    /// Registers `made` (a handle shares its series with its clones).
    fn add<C: Collector + Clone + 'static>(&self, name: &str, made: prometheus::Result<C>) -> C {
        let made = made.unwrap_or_else(|e| panic!("metric {name} cannot be made: {e}"));
        self.collector(name, Box::new(made.clone()));
        made
    }
}

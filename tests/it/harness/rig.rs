//! The one setup of an in-process test, as a builder: a unique prefix, the
//! test configuration (changed as the test needs), the topology declared
//! through the test's own [`Broker`], the receivers started, and the worker
//! started and consuming.
//!
//! ```ignore
//! let rig = Harness::new("retry")
//!     .config(|c| c.topology.retry_schedule = "300ms,1s".parse().unwrap())
//!     .receiver(|_, seen| if seen < 2 { Reply::status(500) } else { Reply::ok() })
//!     .start()
//!     .await;
//! let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
//! // ... publish, wait, assert ...
//! rig.finish().await; // stops the worker (it must stop cleanly), deletes the topology
//! ```
//!
//! A test that panics never reaches `finish`: the worker's drop cancels its
//! shutdown, the broker's drop deletes the topology, and the receivers'
//! drops stop their servers.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use webhook_worker::config::Config;

use super::{Broker, Load, Received, Receiver, Reply, RunningWorker, test_config, unique_prefix};

/// A reply decided from the request and the receiver's load.
type Behaviour = Box<dyn Fn(&Received, Load) -> Reply + Send + Sync>;

/// The machine, shared by the tests of this binary (they run in parallel
/// threads): a rig holds it shared, or exclusively when its test loads the
/// machine with thousands of deliveries at a high concurrency
/// ([`Harness::alone`]) and asserts on timing. In separate binaries those
/// tests met only each other; in one they would otherwise meet any other
/// test, and starve its 2-second delivery timeout.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// How a rig holds [`MACHINE`] (held until the rig drops, never read).
enum Share {
    Shared {
        _guard: RwLockReadGuard<'static, ()>,
    },
    Alone {
        _hold: Alone,
    },
}

/// [`MACHINE`] held exclusively until dropped: no rig and no other
/// `Alone` runs meanwhile. A rig takes it with [`Harness::alone`]; a test
/// that is not on a rig (a worker process, the cluster, the TLS node)
/// with [`Alone::take`].
pub(crate) struct Alone {
    _guard: RwLockWriteGuard<'static, ()>,
}

impl Alone {
    /// Waits until every rig and every other `Alone` has let go.
    pub(crate) async fn take() -> Self {
        Self {
            _guard: MACHINE.write().await,
        }
    }
}

/// What a test needs, before anything is started.
pub(crate) struct Harness {
    config: Config,
    receivers: Vec<Behaviour>,
    alone: bool,
}

impl Harness {
    /// The test configuration ([`test_config`]) with a prefix no other
    /// test uses, derived from `name`.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            config: test_config(&unique_prefix(name)),
            receivers: Vec::new(),
            alone: false,
        }
    }

    /// Runs this test with no other rig at the same time (see [`MACHINE`]).
    pub(crate) fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// Changes the configuration (applied in order).
    pub(crate) fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Adds a receiver answering from the request and how many earlier
    /// requests its path got ([`Load::seen`]). Receivers are
    /// [`Rig::receivers`] in the order added.
    pub(crate) fn receiver(
        self,
        behaviour: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.receiver_loaded(move |r, load| behaviour(r, load.seen))
    }

    /// Adds a receiver whose replies may depend on its load
    /// ([`Receiver::start_loaded`]).
    pub(crate) fn receiver_loaded(
        mut self,
        behaviour: impl Fn(&Received, Load) -> Reply + Send + Sync + 'static,
    ) -> Self {
        self.receivers.push(Box::new(behaviour));
        self
    }

    /// Adds a receiver that answers 200 to everything.
    pub(crate) fn ok_receiver(self) -> Self {
        self.receiver(|_, _| Reply::ok())
    }

    /// Declares the topology and starts the receivers, without a worker
    /// (for a backlog published before it starts, or a worker process):
    /// [`Rig::start_worker`] starts it later.
    pub(crate) async fn declare(self) -> Rig {
        let share = Share::take(self.alone).await;
        let broker = Broker::new(&self.config).await;
        let mut receivers = Vec::with_capacity(self.receivers.len());
        for behaviour in self.receivers {
            receivers.push(Receiver::start_loaded(behaviour).await);
        }
        Rig {
            worker: None,
            receivers,
            broker,
            config: self.config,
            _share: share,
        }
    }

    /// Declares, starts the receivers and the worker, and waits until the
    /// worker consumes.
    pub(crate) async fn start(self) -> Rig {
        let mut rig = self.declare().await;
        rig.start_worker().await;
        rig
    }
}

/// A started test setup. Fields drop in order: the worker first, then the
/// topology, then the hold on the machine.
pub(crate) struct Rig {
    worker: Option<RunningWorker>,
    /// In the order [`Harness::receiver`] added them.
    pub(crate) receivers: Vec<Receiver>,
    pub(crate) broker: Broker,
    /// What the worker was (or will be) started with.
    pub(crate) config: Config,
    _share: Share,
}

impl Share {
    async fn take(alone: bool) -> Self {
        if alone {
            Self::Alone {
                _hold: Alone::take().await,
            }
        } else {
            Self::Shared {
                _guard: MACHINE.read().await,
            }
        }
    }
}

impl Rig {
    /// The test's queue prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.config.names.prefix
    }

    /// The first receiver.
    pub(crate) fn receiver(&self) -> &Receiver {
        self.receivers.first().expect("a receiver was added")
    }

    /// The worker [`Harness::start`] or [`Rig::start_worker`] started.
    pub(crate) fn worker(&self) -> &RunningWorker {
        self.worker.as_ref().expect("the worker was started")
    }

    /// Starts the worker of a rig made by [`Harness::declare`] and waits
    /// until it consumes.
    pub(crate) async fn start_worker(&mut self) {
        assert!(self.worker.is_none(), "one worker per rig");
        self.worker = Some(RunningWorker::start(self.config.clone()).await);
    }

    /// Stops the worker if the test has not (it must stop cleanly), then
    /// deletes the exchange and every queue of the prefix.
    pub(crate) async fn finish(self) {
        let Self {
            worker,
            broker,
            _share,
            ..
        } = self;
        if let Some(worker) = worker.filter(RunningWorker::is_running) {
            worker.stop().await.unwrap();
        }
        broker.cleanup().await;
        drop(_share);
    }
}

//! reconcile-access on the local runner: on a schedule (on the local
//! runner's scaled time) and at once when a local execution ends ABORTED or
//! FAILED, with the event EventBridge would deliver, against the local state
//! machine as its Step Functions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use break_glass_core::clock::Clock;
use break_glass_core::ports::{Alerts, IdentityCenter, Ledger, SessionPolicy, Slack};
use serde_json::{Value, json};

use crate::binaries::LambdaBinaries;
use crate::runner::{Ended, Functions, LocalStateMachine};

/// How often the schedule sweeps, in the runner's (scaled) time.
pub const EVERY: Duration = Duration::from_secs(10 * 60);
/// However fast time runs, sweeps are at least this far apart in real time,
/// so a fast demo does not hammer its stand-ins.
pub const AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Where reconcile-access runs.
#[derive(Debug)]
pub enum With {
    /// `reconcile_access::handle` in this process, with the deps the other
    /// functions get.
    InProcess {
        config: Box<reconcile_access::Config>,
        ledger: Arc<dyn Ledger>,
        identity_center: Arc<dyn IdentityCenter>,
        slack: Arc<dyn Slack>,
        alerts: Option<Arc<dyn Alerts>>,
        clock: Arc<dyn Clock>,
        session_policy: Option<Arc<dyn SessionPolicy>>,
    },
    /// The compiled reconcile-access binary (it reaches the local state
    /// machine through the Step Functions API this process serves).
    Binary(Arc<LambdaBinaries>),
}

#[derive(Debug)]
pub struct Reconciler {
    with: With,
    state_machine_arn: String,
    runs: Mutex<Vec<Value>>,
    count: AtomicU64,
}

impl Reconciler {
    /// In-process, with `functions`' ledger, Slack, alerts and clock, and the
    /// Identity Center revoke-access deletes through.
    pub fn in_process(config: reconcile_access::Config, functions: &Functions) -> Arc<Self> {
        let state_machine_arn = config.state_machine_arn.clone();
        // Only when the reconciler is configured to clean up.
        let session_policy = config
            .session_policy
            .as_ref()
            .and(functions.session_policy.clone());
        Self::new(
            With::InProcess {
                config: Box::new(config),
                ledger: functions.ledger.clone(),
                identity_center: functions.revoke_identity_center.clone(),
                slack: functions.slack.clone(),
                alerts: functions.alerts.clone(),
                clock: functions.clock.clone(),
                session_policy,
            },
            state_machine_arn,
        )
    }

    /// The reconcile-access binary among `binaries`, whose STATE_MACHINE_ARN
    /// is `state_machine_arn`.
    pub fn binary(binaries: Arc<LambdaBinaries>, state_machine_arn: impl Into<String>) -> Arc<Self> {
        Self::new(With::Binary(binaries), state_machine_arn.into())
    }

    fn new(with: With, state_machine_arn: String) -> Arc<Self> {
        Arc::new(Self {
            with,
            state_machine_arn,
            runs: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        })
    }

    fn next_id(&self) -> String {
        format!(
            "local-reconcile-{}-{}",
            std::process::id(),
            self.count.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// EventBridge's event for an execution of ours that ended.
    pub fn ended_event(&self, ended: &Ended) -> Value {
        json!({
            "version": "0",
            "id": self.next_id(),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "detail": {
                "executionArn": format!("{}:{}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1), ended.name),
                "stateMachineArn": self.state_machine_arn,
                "name": ended.name,
                "status": ended.status,
            }
        })
    }

    /// The schedule's event (EventBridge Scheduler's).
    pub fn sweep_event(&self) -> Value {
        json!({"id": self.next_id(), "source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
    }

    /// One run: its summary, or the error it ended with.
    pub async fn run(&self, event: Value, machine: &LocalStateMachine) -> Result<Value, String> {
        let result = match &self.with {
            With::InProcess {
                config,
                ledger,
                identity_center,
                slack,
                alerts,
                clock,
                session_policy,
            } => {
                let deps = reconcile_access::Deps {
                    config,
                    ledger: ledger.as_ref(),
                    identity_center: identity_center.as_ref(),
                    executions: machine,
                    slack: slack.as_ref(),
                    alerts: alerts.as_deref(),
                    clock: clock.as_ref(),
                    session_policy: session_policy.as_deref(),
                };
                reconcile_access::handle(event, &deps)
                    .await
                    .map_err(|e| e.to_string())
            }
            With::Binary(binaries) => binaries
                .invoke("reconcile-access", event, Duration::from_secs(300))
                .await
                .map_err(|e| format!("{}: {}", e.error_type, e.error_message)),
        };
        match &result {
            Ok(summary) => tracing::info!(%summary, "reconcile-access ran"),
            Err(error) => tracing::warn!(%error, "reconcile-access failed"),
        }
        let record = match &result {
            Ok(summary) => summary.clone(),
            Err(error) => json!({"error": error}),
        };
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).push(record);
        result
    }

    /// Every run's summary (or `{"error": …}`), oldest first.
    pub fn runs(&self) -> Vec<Value> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs for as long as the process does: a sweep every `every` of the
    /// machine's scaled time (`None`: no schedule), and a run for each
    /// execution that ends ABORTED or FAILED, one run at a time.
    pub fn spawn(self: Arc<Self>, machine: Arc<LocalStateMachine>, every: Option<Duration>) {
        let mut endings = machine.subscribe();
        let period = every.map(|every| every.div_f64(machine.time_scale().max(1e-9)).max(AT_MOST_EVERY));
        // The schedule ticks in a task of this runtime (at most one tick
        // waiting); when the runtime shuts down, the ticks stop and so does
        // the loop, which waits on channels only.
        let (tick, mut ticks) = tokio::sync::mpsc::channel::<()>(1);
        if let Some(p) = period {
            tokio::spawn(async move {
                let mut i = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    i.tick().await;
                    if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = tick.try_send(()) {
                        return;
                    }
                }
            });
        } else {
            drop(tick);
        }
        let scheduled = period.is_some();
        // reconcile_access::handle's future is not Send (it holds a `&dyn
        // Fn` across awaits), so the loop runs on a thread of its own, on
        // this runtime's drivers; the future is made on that thread, only
        // what it starts from crosses over.
        let runtime = tokio::runtime::Handle::current();
        let run_loop = move || async move {
            loop {
                let event = tokio::select! {
                    ended = endings.recv() => match ended {
                        Some(ended) => self.ended_event(&ended),
                        None => return,
                    },
                    swept = ticks.recv(), if scheduled => match swept {
                        Some(()) => self.sweep_event(),
                        None => return,
                    },
                };
                let _ = self.run(event, &machine).await;
            }
        };
        if let Err(error) = std::thread::Builder::new()
            .name("reconcile-access".into())
            .spawn(move || runtime.block_on(run_loop()))
        {
            tracing::error!(%error, "could not start reconcile-access");
        }
    }
}

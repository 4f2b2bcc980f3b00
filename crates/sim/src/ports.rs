//! The ports as one Lambda invocation sees them: every call goes through
//! [`Invocation::call`], which draws its latency and its fault from the
//! seed, and may kill the invocation before or after the call takes effect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::clock::Clock;
use break_glass_core::domain::{AccountId, PermissionSetArn, SlackUserId};
use break_glass_core::ledger::{LedgerItem, LedgerKey};
use break_glass_core::ports::{
    Alerts, Directory, DirectoryUser, ExecutionStatus, Executions, IdentityCenter, Ledger, LookupAttribute,
    PermissionSetInfo, PortError, PortErrorKind, Provisioning, SessionPolicy, Slack, SlackProfile,
    StartOutcome, Written,
};
use break_glass_core::sessions::PolicyState;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::world::{self, World, item_text};

/// The simulation's clock: the seed runtime's paused tokio time.
#[derive(Debug, Clone)]
pub struct SimClock(pub Arc<World>);

#[async_trait]
impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// `Invocation::execution` of a reconcile-access run.
pub const RECONCILER: usize = usize::MAX;

/// One run of a Lambda function.
#[derive(Debug)]
pub struct Invocation {
    pub world: Arc<World>,
    pub execution: usize,
    pub id: u64,
    /// `e2 grant#7`: who the trace says did something.
    pub label: String,
    crashed: Notify,
    crash: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Throttle,
    Transient,
    CrashBefore,
    CrashAfter,
    Lost,
    Hang(Duration),
}

impl Invocation {
    pub fn new(world: Arc<World>, execution: usize, task: &str) -> Arc<Self> {
        let id = world.next_invocation();
        Arc::new(Self {
            label: format!("{} {task}#{id}", world.label(execution)),
            world,
            execution,
            id,
            crashed: Notify::new(),
            crash: Mutex::new(None),
        })
    }

    /// Resolves when a port call killed this invocation; says where.
    pub async fn crashed(&self) -> String {
        self.crashed.notified().await;
        self.crash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    async fn die<T>(&self, where_: String) -> T {
        self.world.log(&self.label, format!("CRASH {where_}"));
        self.world.stat("crashes");
        *self.crash.lock().unwrap_or_else(|e| e.into_inner()) = Some(where_);
        self.crashed.notify_one();
        std::future::pending().await
    }

    /// A run of reconcile-access (`rec#N`), which belongs to no execution.
    pub fn reconciler(world: Arc<World>) -> Arc<Self> {
        let id = world.next_invocation();
        Arc::new(Self {
            label: format!("rec#{id}"),
            world,
            execution: RECONCILER,
            id,
            crashed: Notify::new(),
            crash: Mutex::new(None),
        })
    }

    fn plan(&self, write: bool) -> (Duration, Duration, Fault) {
        let f = &self.world.faults_now();
        self.world.rng(|r| {
            let mut there = r.millis(2, 40);
            let mut back = r.millis(2, 40);
            if r.chance(f.slow) {
                // A slow connection, a client-side retry, a frozen sandbox:
                // on the way there the call lands late, on the way back
                // its effect is seen late.
                if r.chance(0.5) {
                    there += r.millis(500, 10_000);
                } else {
                    back += r.millis(1_000, 20_000);
                }
            }
            let fault = if r.chance(f.crash) {
                if r.chance(0.5) {
                    Fault::CrashBefore
                } else {
                    Fault::CrashAfter
                }
            } else if r.chance(f.hang) {
                Fault::Hang(r.millis(200_000, 900_000))
            } else if r.chance(f.throttle) {
                Fault::Throttle
            } else if r.chance(f.transient) {
                Fault::Transient
            } else if write && r.chance(f.lost) {
                Fault::Lost
            } else {
                Fault::None
            };
            (there, back, fault)
        })
    }

    /// One call: the request travels, `effect` happens at the service (or
    /// not), the answer travels back (or not).
    pub async fn call<T: Send>(
        &self,
        service: &'static str,
        operation: &'static str,
        write: bool,
        effect: impl FnOnce() -> Result<T, PortError> + Send,
    ) -> Result<T, PortError> {
        let (there, back, fault) = self.plan(write);
        tokio::time::sleep(there).await;
        let refuse = |kind, message: &str| {
            self.world.log(&self.label, format!("{operation} -> {message}"));
            Err(PortError::new(kind, service, operation, message))
        };
        match fault {
            Fault::Throttle => {
                self.world.stat("throttled calls");
                return refuse(PortErrorKind::Throttled, "ThrottlingException (simulated)");
            }
            Fault::Transient => {
                self.world.stat("500s");
                return refuse(PortErrorKind::Transient, "HTTP 500 (simulated), nothing done");
            }
            Fault::CrashBefore => return self.die(format!("before {operation} took effect")).await,
            _ => {}
        }
        let result = effect();
        match fault {
            Fault::CrashAfter => self.die(format!("after {operation} took effect")).await,
            Fault::Lost if result.is_ok() => {
                tokio::time::sleep(back).await;
                self.world.stat("lost answers");
                refuse(
                    PortErrorKind::Transient,
                    "HTTP 500 (simulated) after the call took effect",
                )
            }
            Fault::Hang(d) => {
                self.world.log(
                    &self.label,
                    format!("{operation}: the answer takes {} s", d.as_secs()),
                );
                self.world.stat("hung calls");
                tokio::time::sleep(d).await;
                result
            }
            _ => {
                tokio::time::sleep(back).await;
                result
            }
        }
    }
}

/// Every port, for one invocation.
#[derive(Debug, Clone)]
pub struct SimPorts(pub Arc<Invocation>);

impl SimPorts {
    fn world(&self) -> &Arc<World> {
        &self.0.world
    }
    fn label(&self) -> &str {
        &self.0.label
    }
}

const IC: &str = "identity-center";

#[async_trait]
impl IdentityCenter for SimPorts {
    async fn assigned_users(
        &self,
        _account: &AccountId,
        _permission_set: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call(IC, "ListAccountAssignments", false, || Ok(w.ic_list(by)))
            .await
    }

    async fn create_assignment(
        &self,
        _account: &AccountId,
        _permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError> {
        assert_eq!(user_id, world::USER_ID);
        let (w, by, inv) = (self.world(), self.label(), &self.0);
        self.0
            .call(IC, "CreateAccountAssignment", true, || {
                let accepted = w.ic_create(by);
                if accepted.is_ok() && inv.execution != RECONCILER {
                    w.execution(inv.execution, |e| {
                        if let Some(g) = e.grant_invocations.iter_mut().find(|g| g.id == inv.id) {
                            g.created = true;
                        }
                    });
                }
                accepted
            })
            .await
    }

    async fn creation_status(&self, request_id: &str) -> Result<Provisioning, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call(IC, "DescribeAccountAssignmentCreationStatus", false, || {
                w.ic_status(by, request_id, true)
            })
            .await
    }

    async fn delete_assignment(
        &self,
        _account: &AccountId,
        _permission_set: &PermissionSetArn,
        user_id: &str,
    ) -> Result<Provisioning, PortError> {
        assert_eq!(user_id, world::USER_ID);
        let (w, by) = (self.world(), self.label());
        self.0
            .call(IC, "DeleteAccountAssignment", true, || w.ic_delete(by))
            .await
    }

    async fn deletion_status(&self, request_id: &str) -> Result<Provisioning, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call(IC, "DescribeAccountAssignmentDeletionStatus", false, || {
                w.ic_status(by, request_id, false)
            })
            .await
    }

    async fn permission_set(
        &self,
        _permission_set: &PermissionSetArn,
    ) -> Result<PermissionSetInfo, PortError> {
        self.0
            .call(IC, "DescribePermissionSet", false, || {
                Ok(PermissionSetInfo {
                    name: world::PERMISSION_SET_NAME.into(),
                    session_duration: Some("PT1H".into()),
                })
            })
            .await
    }
}

#[async_trait]
impl Ledger for SimPorts {
    async fn get(&self, key: &LedgerKey) -> Result<Option<LedgerItem>, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("ledger", "GetItem", false, || {
                let item = w.ledger_get(key);
                w.log(
                    by,
                    format!(
                        "ledger get -> {}",
                        item.as_ref().map(item_text).unwrap_or_else(|| "no item".into())
                    ),
                );
                Ok(item)
            })
            .await
    }

    async fn put(&self, item: &LedgerItem, expected: Option<u64>) -> Result<Written, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("ledger", "PutItem", true, || Ok(w.ledger_put(by, item, expected)))
            .await
    }

    async fn open_items(&self) -> Result<Vec<LedgerItem>, PortError> {
        let w = self.world();
        self.0
            .call("ledger", "Query", false, || Ok(w.ledger_open_items()))
            .await
    }

    /// The simulation checks revocation, not the drift report: it asks
    /// nothing to be reported (the call still costs a ledger round trip).
    async fn note_drift(
        &self,
        _key: &LedgerKey,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        self.0.call("ledger", "PutItem", true, || Ok(false)).await
    }

    async fn take_lease(
        &self,
        name: &str,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        let w = self.world();
        self.0
            .call("ledger", "PutItem", true, || {
                Ok(w.lease_take(name, owner, now, until))
            })
            .await
    }

    async fn end_lease(&self, name: &str, owner: &str) -> Result<(), PortError> {
        let w = self.world();
        self.0
            .call("ledger", "PutItem", true, || {
                w.lease_end(name, owner);
                Ok(())
            })
            .await
    }
}

/// IAM, through the audit role: as faulty, slow and crash-prone as every
/// other call.
#[async_trait]
impl SessionPolicy for SimPorts {
    async fn read(&self, _account: &AccountId) -> Result<PolicyState, PortError> {
        let w = self.world();
        self.0
            .call("iam", "GetPolicyVersion", false, || Ok(w.iam_read()))
            .await
    }

    async fn delete_version(&self, _account: &AccountId, version_id: &str) -> Result<(), PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("iam", "DeletePolicyVersion", true, || {
                w.iam_delete(by, version_id)
            })
            .await
    }

    async fn write_default(&self, _account: &AccountId, document: &str) -> Result<(), PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("iam", "CreatePolicyVersion", true, || w.iam_write(by, document))
            .await
    }
}

#[async_trait]
impl Slack for SimPorts {
    async fn user_profile(&self, _user: &SlackUserId) -> Result<SlackProfile, PortError> {
        self.0
            .call("slack", "users.info", false, || {
                Ok(SlackProfile {
                    email: Some(world::EMAIL.into()),
                    team_id: Some("T0SIM".into()),
                    ..SlackProfile::default()
                })
            })
            .await
    }

    async fn post_message(
        &self,
        _channel: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<(), PortError> {
        let (w, by, inv) = (self.world(), self.label(), &self.0);
        self.0
            .call("slack", "chat.postMessage", true, || {
                if inv.execution == RECONCILER {
                    if text.starts_with(":rotating_light:") {
                        w.reconciler_alert(by, thread_ts, text);
                    } else {
                        w.log(
                            by,
                            format!("slack: {}", text.chars().take(90).collect::<String>()),
                        );
                    }
                    return Ok(());
                }
                let first: String = text.chars().take(90).collect();
                w.log(by, format!("slack: {first}"));
                w.execution(inv.execution, |e| e.posts.push(text.to_string()));
                if text.starts_with(":unlock:") {
                    w.unlocked(inv.execution);
                }
                Ok(())
            })
            .await
    }

    async fn respond_ephemeral(&self, _response_url: &str, _text: &str) -> Result<(), PortError> {
        Ok(())
    }
}

#[async_trait]
impl Directory for SimPorts {
    async fn find_user(
        &self,
        _attribute: LookupAttribute,
        value: &str,
    ) -> Result<Option<DirectoryUser>, PortError> {
        self.0
            .call("identitystore", "GetUserId", false, || {
                Ok((value == world::EMAIL).then(|| DirectoryUser {
                    user_id: world::USER_ID.into(),
                    user_name: world::USER_NAME.into(),
                    display_name: Some("Alice".into()),
                }))
            })
            .await
    }
}

#[async_trait]
impl Alerts for SimPorts {
    async fn publish(&self, _subject: &str, message: &str) -> Result<(), PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("sns", "Publish", true, || {
                w.reconciler_alert(by, None, message);
                Ok(())
            })
            .await
    }
}

/// `DescribeExecution`, from what the simulation knows of its executions,
/// as of a moment up to the seed's Step Functions lag ago.
#[async_trait]
impl Executions for SimPorts {
    async fn start(&self, _name: &str, _input: &str) -> Result<StartOutcome, PortError> {
        Err(PortError::new(
            PortErrorKind::Other,
            "states",
            "StartExecution",
            "not simulated",
        ))
    }

    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError> {
        let (w, by) = (self.world(), self.label());
        self.0
            .call("states", "DescribeExecution", false, || {
                let now = w.elapsed();
                let lag_ms = w.faults_now().sfn_lag_ms;
                let lag = w.rng(|r| {
                    if r.chance(0.5) {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(r.below(lag_ms + 1))
                    }
                });
                let seen_at = now.saturating_sub(lag);
                let status = w.executions().into_iter().find(|e| e.name == name).and_then(|e| {
                    match (e.started, e.ended) {
                        (Some(s), _) if s > seen_at => None,
                        (None, _) => None,
                        (Some(_), Some(end)) if end <= seen_at => {
                            Some(ExecutionStatus::Ended(e.ending.clone().unwrap_or_default()))
                        }
                        _ => Some(ExecutionStatus::Running),
                    }
                });
                w.log(
                    by,
                    format!(
                        "DescribeExecution {} -> {status:?} (as of {:.1} s ago)",
                        world::short(name),
                        lag.as_secs_f64()
                    ),
                );
                Ok(status)
            })
            .await
    }
}

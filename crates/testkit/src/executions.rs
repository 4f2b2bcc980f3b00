//! An in-memory [`Executions`]: the state machine's own record of
//! executions, for tests that start executions without moto.

use std::sync::{Arc, Mutex};

use break_glass_core::contract::Execution;
use break_glass_core::ports::{ExecutionStatus, Executions, PortError, StartOutcome};

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    running: bool,
}

#[derive(Debug, Clone, Default)]
pub struct InMemoryExecutions {
    entries: Arc<Mutex<Vec<Entry>>>,
    /// Tokens sent `SendTaskSuccess`, in order.
    woken: Arc<Mutex<Vec<String>>>,
}

impl InMemoryExecutions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a running execution, as StartExecution would.
    pub fn started(&self, execution: &Execution) {
        self.lock().push(Entry {
            name: execution.execution_name.clone(),
            running: true,
        });
    }

    /// The task tokens woken with `SendTaskSuccess`, in order.
    pub fn woken(&self) -> Vec<String> {
        self.woken.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The names of the executions started.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|e| e.name.clone()).collect()
    }

    pub fn ended(&self, name: &str) {
        for e in self.lock().iter_mut().filter(|e| e.name == name) {
            e.running = false;
        }
    }
}

#[async_trait::async_trait]
impl Executions for InMemoryExecutions {
    async fn start(&self, name: &str, _input: &str) -> Result<StartOutcome, PortError> {
        let mut entries = self.lock();
        if entries.iter().any(|e| e.name == name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        entries.push(Entry {
            name: name.to_string(),
            running: true,
        });
        Ok(StartOutcome::Started {
            execution_arn: format!("arn:aws:states:us-east-1:123456789012:execution:test:{name}"),
        })
    }

    /// A token wakes its task once, as in Step Functions.
    async fn send_task_success(&self, token: &str, _output: &str) -> Result<bool, PortError> {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        if woken.iter().any(|t| t == token) {
            return Ok(false);
        }
        woken.push(token.to_string());
        Ok(true)
    }

    async fn status(&self, name: &str) -> Result<Option<ExecutionStatus>, PortError> {
        Ok(self.lock().iter().find(|e| e.name == name).map(|e| {
            if e.running {
                ExecutionStatus::Running
            } else {
                ExecutionStatus::Ended("SUCCEEDED".into())
            }
        }))
    }
}

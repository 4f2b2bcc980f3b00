//! An in-memory [`Executions`]: the state machine's own record of running
//! executions, for tests where moto cannot help (its execution history is
//! canned, so it never shows a grant section).

use std::sync::{Arc, Mutex};

use break_glass_core::contract::{Execution, Grant};
use break_glass_core::ports::{ExecutionStatus, Executions, PortError, RunningExecution, StartOutcome};

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    input: String,
    running: bool,
    grant: Option<Grant>,
}

#[derive(Debug, Clone, Default)]
pub struct InMemoryExecutions {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl InMemoryExecutions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a running execution, as StartExecution would.
    pub fn started(&self, execution: &Execution) {
        self.lock().push(Entry {
            name: execution.execution_name.clone(),
            input: serde_json::to_string(execution).unwrap(),
            running: true,
            grant: None,
        });
    }

    /// Records the grant step's output, as its history would show it.
    pub fn granted(&self, output: &serde_json::Value) {
        let execution = Execution::from_value(output.clone()).unwrap();
        for e in self
            .lock()
            .iter_mut()
            .filter(|e| e.name == execution.execution_name)
        {
            e.grant = execution.grant.clone();
        }
    }

    pub fn ended(&self, name: &str) {
        for e in self.lock().iter_mut().filter(|e| e.name == name) {
            e.running = false;
        }
    }
}

#[async_trait::async_trait]
impl Executions for InMemoryExecutions {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, PortError> {
        let mut entries = self.lock();
        if entries.iter().any(|e| e.name == name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        entries.push(Entry {
            name: name.to_string(),
            input: input.to_string(),
            running: true,
            grant: None,
        });
        Ok(StartOutcome::Started {
            execution_arn: format!("arn:aws:states:us-east-1:123456789012:execution:test:{name}"),
        })
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

    async fn running(&self) -> Result<Vec<RunningExecution>, PortError> {
        Ok(self
            .lock()
            .iter()
            .filter(|e| e.running)
            .map(|e| RunningExecution {
                name: e.name.clone(),
                input: e.input.clone(),
                grant: e.grant.clone(),
            })
            .collect())
    }
}

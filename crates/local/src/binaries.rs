//! `--lambda-binaries DIR`: the compiled functions themselves, each started
//! as a process with the environment Lambda gives it and driven through a
//! Lambda Runtime API stand-in, so the deployed artefacts are what runs.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use break_glass_testkit::runtime_api::{FunctionError, RuntimeApi};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::asl::TaskError;
use crate::runner::Tasks;

pub const FUNCTIONS: [&str; 6] = [
    "access-requested",
    "grant-access",
    "hold-access",
    "revoke-access",
    "report-on-access",
    "reconcile-access",
];

#[derive(Debug)]
struct Running {
    api: RuntimeApi,
    // Held so the process lives as long as we do (kill_on_drop).
    _child: Child,
}

#[derive(Debug)]
pub struct LambdaBinaries {
    running: HashMap<String, Running>,
}

impl LambdaBinaries {
    /// Starts the six binaries in `dir`, each with `env` (what Terraform
    /// would set, plus AWS endpoints and credentials) and its own Runtime API.
    pub async fn start(dir: &Path, env: &[(String, String)]) -> Result<Self, String> {
        let mut running = HashMap::new();
        for name in FUNCTIONS {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(format!(
                    "{} not found: build the functions first (cargo build --bins)",
                    path.display()
                ));
            }
            let api = RuntimeApi::start(name).await;
            let child = Command::new(&path)
                .env_clear()
                .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
                .envs(env.iter().cloned())
                .envs(api.lambda_environment(name))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting {}: {e}", path.display()))?;
            running.insert(name.to_string(), Running { api, _child: child });
        }
        Ok(Self { running })
    }

    /// Invokes one function with an event, as Lambda would.
    pub async fn invoke(
        &self,
        function: &str,
        event: Value,
        timeout: Duration,
    ) -> Result<Value, FunctionError> {
        let Some(r) = self.running.get(function) else {
            return Err(FunctionError {
                error_type: "ResourceNotFoundException".into(),
                error_message: format!("no function {function}"),
            });
        };
        r.api.invoke(event, timeout).await
    }
}

#[async_trait]
impl Tasks for LambdaBinaries {
    async fn run(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let function = resource.strip_prefix("local:").unwrap_or(resource);
        self.invoke(function, input, Duration::from_secs(900))
            .await
            .map_err(|e| {
                TaskError::new(
                    e.error_type.clone(),
                    json!({"errorType": e.error_type, "errorMessage": e.error_message}).to_string(),
                )
            })
    }
}

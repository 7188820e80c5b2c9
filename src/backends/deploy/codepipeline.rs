//! AWS CodePipeline: start an execution pinned to the version, follow it
//! stage by stage, and answer its manual approval from the console.
//!
//! Through the official AWS SDK for Rust (`aws-sdk-codepipeline`, signing,
//! retries and the credential chain are the SDK's; nothing is signed by
//! hand). What this relies on, from the AWS CodePipeline API Reference
//! (API version 2015-07-09, AWS JSON 1.1: `POST /` with `X-Amz-Target:
//! CodePipeline_20150709.<Operation>`) and the SDK's documentation:
//!
//! - `StartPipelineExecution` `{name, sourceRevisions: [{actionName,
//!   revisionType, revisionValue}], variables: [{name, value}],
//!   clientRequestToken}` answers `{pipelineExecutionId}`. `revisionType`
//!   is one of COMMIT_ID, IMAGE_DIGEST, S3_OBJECT_VERSION_ID,
//!   S3_OBJECT_KEY — there is no "tag" type, so a version is resolved to
//!   its commit through `[release] git` (or an explicit `revision` rule).
//!   Errors: PipelineNotFoundException, ValidationException,
//!   ConflictException, ConcurrentPipelineExecutionsLimitExceededException.
//! - `GetPipelineExecution` `{pipelineName, pipelineExecutionId}` answers
//!   `{pipelineExecution: {status, statusSummary, …}}`; status is
//!   InProgress, Stopping, Stopped, Succeeded, Superseded, Failed or
//!   Cancelled.
//! - `ListActionExecutions` `{pipelineName, filter: {pipelineExecutionId}}`
//!   answers `{actionExecutionDetails: [{stageName, actionName, status,
//!   input: {actionTypeId: {category, owner, provider, version}}}]}`, newest
//!   first; action status InProgress, Abandoned, Succeeded or Failed.
//! - `GetPipelineState` `{name}` answers `{stageStates: [{stageName,
//!   latestExecution: {pipelineExecutionId, status}, actionStates:
//!   [{actionName, latestExecution: {status, token, summary}}]}]}`: a
//!   manual approval waiting on a human is an InProgress action of
//!   category Approval, and its latest execution carries the token.
//! - `PutApprovalResult` `{pipelineName, stageName, actionName, result:
//!   {summary, status: Approved | Rejected}, token}` answers
//!   `{approvedAt}`; InvalidApprovalTokenException and
//!   ApprovalAlreadyCompletedException when the approval is no longer open.
//! - The console's page of an execution:
//!   `https://<region>.console.aws.amazon.com/codesuite/codepipeline/pipelines/<name>/executions/<id>/timeline`.
//!
//! Credentials come from the SDK's default chain (environment variables,
//! the shared config and credentials files with `profile`, web identity,
//! ECS, IMDS). The HTTP client is the SDK's hyper client on rustls with
//! ring (no aws-lc, no cmake in the build). A call that starts something
//! (`StartPipelineExecution`, `PutApprovalResult`) is sent once, with the
//! SDK's retries off: a lost answer or a 5xx is "outcome unknown". The
//! credential chain is resolved before the start, so a missing credential
//! is a plain failure (nothing sent), not an unknown. Reads keep the
//! SDK's standard retries (throttling, 5xx). Every call is bounded by the
//! deploy's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, ActionExecutionFilter, ApprovalResult, ApprovalStatus, PipelineVariable,
    SourceRevisionOverride, SourceRevisionType, StageState,
};

use super::call::{pause, took};
use super::progress::Pending;
use super::{Progress, Report, Review, Started, Waiting};
use crate::backends::BackendError;
use crate::backends::util::fill;
use crate::backends::vcs::git::GitRepo;
use crate::config::CodePipelineConfig;
use crate::domain::Version;

/// Longest single call; the deploy's deadline may cut it shorter.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the answer to a manual approval.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(15);
/// CodePipeline's limit on an approval summary.
const SUMMARY_MAX: usize = 512;

#[derive(Clone, Debug)]
pub struct CodePipeline {
    pub(super) name: String,
    env: String,
    pipeline: String,
    region: String,
    profile: Option<String>,
    endpoint: Option<String>,
    source_action: Option<String>,
    revision_type: String,
    /// The revision rule with `{env}` filled in; `None`: the commit
    /// `[release] git` resolves the version to.
    revision: Option<String>,
    /// Pipeline variables with `{env}` filled in.
    variables: BTreeMap<String, String>,
    repo: Option<GitRepo>,
    timeout: Duration,
    poll: Duration,
    /// The SDK client, made on the first deploy (loading the credential
    /// chain's configuration reads files and the environment).
    client: Arc<tokio::sync::OnceCell<Sdk>>,
    /// The manual approval the followed execution waits for, while it does.
    gate: Pending<Gate>,
}

/// The SDK client, and the credential chain it signs with.
#[derive(Debug)]
struct Sdk {
    client: aws_sdk_codepipeline::Client,
    credentials: Option<aws_sdk_codepipeline::config::SharedCredentialsProvider>,
}

/// A manual approval action waiting on a human, and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Gate {
    execution: String,
    stage: String,
    action: String,
    token: String,
}

/// Whether an SDK call may be repeated when its answer is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Start,
}

impl CodePipeline {
    pub(super) fn new(
        env: &str,
        cfg: &CodePipelineConfig,
        timeout: Duration,
        poll: Duration,
    ) -> Self {
        // The chain's secrets, should a server or the SDK echo them.
        for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Ok(s) = std::env::var(var)
                && !s.is_empty()
            {
                crate::text::register_secret(&s);
            }
        }
        if let Some(u) = &cfg.api_url {
            crate::text::register_url_credentials(u);
        }
        let with_env = |v: &String| v.replace("{env}", env);
        CodePipeline {
            name: format!("CodePipeline of {env} ({} in {})", cfg.pipeline, cfg.region),
            env: env.to_string(),
            pipeline: cfg.pipeline.clone(),
            region: cfg.region.clone(),
            profile: cfg.profile.clone(),
            endpoint: cfg.api_url.clone(),
            source_action: cfg.source_action.clone(),
            revision_type: cfg.revision_type.clone(),
            revision: cfg.revision.as_ref().map(with_env),
            variables: cfg
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), with_env(v)))
                .collect(),
            repo: None,
            timeout,
            poll: poll.max(Duration::from_millis(100)),
            client: Arc::new(tokio::sync::OnceCell::new()),
            gate: Pending::new(),
        }
    }

    /// Resolve versions to commits through this repository (`[release] git`).
    pub(super) fn with_repo(mut self, repo: Option<&GitRepo>) -> Self {
        self.repo = repo.cloned();
        self
    }

    /// The console's page of execution `id`.
    fn console_url(&self, id: &str) -> String {
        format!(
            "https://{r}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{p}/executions/{id}/timeline?region={r}",
            r = self.region,
            p = self.pipeline
        )
    }

    async fn client(&self) -> &aws_sdk_codepipeline::Client {
        &self.sdk().await.client
    }

    async fn sdk(&self) -> &Sdk {
        self.client
            .get_or_init(|| async {
                use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https();
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(self.region.clone()))
                    .http_client(http)
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(5))
                            .operation_attempt_timeout(CALL_TIMEOUT)
                            .build(),
                    );
                if let Some(p) = &self.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(u) = &self.endpoint {
                    loader = loader.endpoint_url(u);
                }
                let sdk = loader.load().await;
                Sdk {
                    client: aws_sdk_codepipeline::Client::new(&sdk),
                    credentials: sdk.credentials_provider(),
                }
            })
            .await
    }

    /// Resolve the credential chain before anything is sent: without
    /// credentials the SDK fails the call inside its dispatch, which would
    /// read as "outcome unknown" for a start that never left. The secrets
    /// found (a profile's, an assumed role's) are redacted from then on.
    async fn credentials(&self, deadline: Instant) -> Result<(), BackendError> {
        use aws_sdk_codepipeline::config::ProvideCredentials;
        let named = format!("{}: AWS credentials", self.name);
        let Some(provider) = self.sdk().await.credentials.clone() else {
            return Err(BackendError::Command {
                backend: named,
                cause: "no credentials provider: nothing started".into(),
            });
        };
        let room = deadline
            .saturating_duration_since(Instant::now())
            .min(CALL_TIMEOUT);
        match tokio::time::timeout(room, provider.provide_credentials()).await {
            Ok(Ok(c)) => {
                crate::text::register_secret(c.secret_access_key());
                if let Some(t) = c.session_token() {
                    crate::text::register_secret(t);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(BackendError::Command {
                backend: named,
                cause: format!(
                    "nothing started: no usable credentials in the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or profile, web identity, ECS, instance metadata): {}",
                    chain(&e)
                ),
            }),
            Err(_) => Err(BackendError::Timeout {
                backend: named,
                after: room,
            }),
        }
    }

    /// The revision the version pins the source action to.
    async fn revision(&self, version: &Version) -> Result<Option<String>, BackendError> {
        let Some(action) = &self.source_action else {
            return Ok(None);
        };
        if let Some(rule) = &self.revision {
            return Ok(Some(
                fill(std::slice::from_ref(rule), &[("version", version.as_str())]).remove(0),
            ));
        }
        let Some(repo) = &self.repo else {
            return Err(BackendError::Command {
                backend: self.name.clone(),
                cause: format!(
                    "cannot pin source action {action} to {version}: CodePipeline takes a commit id, and there is no [release] git to resolve the version in (or set revision = \"{{version}}\" when versions are commit ids); nothing started"
                ),
            });
        };
        repo.resolve(version)
            .await
            .map(|r| Some(r.sha))
            .map_err(|e| BackendError::Command {
                backend: self.name.clone(),
                cause: format!(
                    "cannot resolve {version} to a commit for source action {action}: {e}; nothing started"
                ),
            })
    }

    /// Start, follow; Ok with the execution's console URL once it
    /// succeeded.
    pub(super) async fn start(
        &self,
        version: &Version,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let t0 = Instant::now();
        let deadline = t0 + self.timeout;
        let revision = self.revision(version).await?;
        let client = self.client().await;
        self.credentials(deadline).await?;

        let call = "StartPipelineExecution";
        let mut req = client
            .start_pipeline_execution()
            .name(&self.pipeline)
            .client_request_token(request_token(&self.env, version));
        if let (Some(action), Some(value)) = (&self.source_action, &revision) {
            let over = SourceRevisionOverride::builder()
                .action_name(action)
                .revision_type(SourceRevisionType::from(self.revision_type.as_str()))
                .revision_value(value)
                .build()
                .map_err(|e| self.garbage(call, e))?;
            req = req.source_revisions(over);
        }
        for (k, v) in &self.variables {
            let value = fill(std::slice::from_ref(v), &[("version", version.as_str())]).remove(0);
            let var = PipelineVariable::builder()
                .name(k)
                .value(value)
                .build()
                .map_err(|e| self.garbage(call, e))?;
            req = req.variables(var);
        }
        let req = req.customize().config_override(
            aws_sdk_codepipeline::config::Builder::default()
                .retry_config(aws_sdk_codepipeline::config::retry::RetryConfig::disabled()),
        );
        let out = self
            .bounded(call, Kind::Start, deadline, req.send())
            .await?;
        let id = out
            .pipeline_execution_id()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| BackendError::OutcomeUnknown {
                backend: format!("{}: {call}", self.name),
                cause: "CodePipeline answered without a pipelineExecutionId; an execution may have started: look before deploying again".into(),
            })?;
        let pinned = match (&self.source_action, &revision) {
            (Some(a), Some(r)) => format!(" with {a} at {r}"),
            _ => String::new(),
        };
        tracing::info!(
            "{}: execution {id} started for {version}{pinned}: {}",
            self.name,
            self.console_url(&id)
        );
        let r = self.follow(&id, t0, deadline, report).await;
        self.gate.clear();
        // Started: losing track of the execution now leaves the deploy
        // unknown, not failed — it may well be deploying.
        r.map_err(|e| super::call::lost_track(&self.name, e))
    }

    /// Follow execution `id` to its end.
    async fn follow(
        &self,
        id: &str,
        t0: Instant,
        deadline: Instant,
        report: Report<'_>,
    ) -> Result<Started, BackendError> {
        let client = self.client().await;
        let url = self.console_url(id);
        let what = format!("CodePipeline {} execution {}", self.pipeline, short(id));
        let mut last = String::new();
        loop {
            let out = self
                .bounded(
                    "GetPipelineExecution",
                    Kind::Read,
                    deadline,
                    client
                        .get_pipeline_execution()
                        .pipeline_name(&self.pipeline)
                        .pipeline_execution_id(id)
                        .send(),
                )
                .await?;
            let exec = out
                .pipeline_execution()
                .ok_or_else(|| BackendError::Garbage {
                    backend: format!("{}: GetPipelineExecution", self.name),
                    cause: "no pipelineExecution in the answer".into(),
                })?;
            let status = exec
                .status()
                .map(|s| s.as_str().to_string())
                .ok_or_else(|| BackendError::Garbage {
                    backend: format!("{}: GetPipelineExecution", self.name),
                    cause: "an execution without a status".into(),
                })?;
            let summary = exec.status_summary().unwrap_or("").to_string();
            if status != last {
                tracing::info!("{what}: {}, {} ({url})", words(&status), took(t0.elapsed()));
                last = status.clone();
            }
            match status.as_str() {
                "Succeeded" => {
                    return Ok(Started {
                        line: format!("{what} succeeded after {} ({url})", took(t0.elapsed())),
                        url: Some(url),
                        ended: true,
                    });
                }
                "InProgress" | "Stopping" => {}
                ended => {
                    let why = if summary.is_empty() {
                        String::new()
                    } else {
                        format!(": {summary}")
                    };
                    return Err(BackendError::Command {
                        backend: self.name.clone(),
                        cause: format!("{what} ended: {}{why} ({url})", words(ended)),
                    });
                }
            }
            let (step, approval) = self.where_it_is(id, deadline).await;
            let waiting = match approval {
                Some((stage, action)) => self.open_approval(id, &stage, &action, deadline).await,
                None => {
                    self.gate.clear();
                    None
                }
            };
            report(Progress {
                what: what.clone(),
                state: if waiting.is_some() {
                    "waiting".into()
                } else {
                    words(&status)
                },
                elapsed_s: t0.elapsed().as_secs_f64(),
                step,
                url: Some(url.clone()),
                waiting,
            });
            if Instant::now() >= deadline {
                return Err(BackendError::Timeout {
                    backend: format!("{}: {what} still {} ({url})", self.name, words(&status)),
                    after: self.timeout,
                });
            }
            pause(self.poll, deadline).await;
        }
    }

    /// Where execution `id` is ("Deploy / DeployECS") and the manual
    /// approval in progress, if one is: every page of its action
    /// executions (`nextToken` followed, at most [`MAX_ACTION_PAGES`]), as a
    /// long pipeline or a re-run stage does not fit in one. A failed read
    /// only costs the step (the pages read before it still count).
    async fn where_it_is(
        &self,
        id: &str,
        deadline: Instant,
    ) -> (Option<String>, Option<(String, String)>) {
        let client = self.client().await;
        let mut details = Vec::new();
        let mut token: Option<String> = None;
        for page in 1..=MAX_ACTION_PAGES {
            let r = self
                .bounded(
                    "ListActionExecutions",
                    Kind::Read,
                    deadline,
                    client
                        .list_action_executions()
                        .pipeline_name(&self.pipeline)
                        .filter(
                            ActionExecutionFilter::builder()
                                .pipeline_execution_id(id)
                                .build(),
                        )
                        .set_next_token(token.take())
                        .send(),
                )
                .await;
            match r {
                Ok(out) => {
                    details.extend_from_slice(out.action_execution_details());
                    match out.next_token().filter(|t| !t.is_empty()) {
                        Some(t) if page < MAX_ACTION_PAGES => token = Some(t.to_string()),
                        Some(_) => {
                            tracing::debug!(
                                "{}: ListActionExecutions of {id}: more than {MAX_ACTION_PAGES} pages, the rest unread",
                                self.name
                            );
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    tracing::debug!("{}", e.cleaned());
                    break;
                }
            }
        }
        in_progress(&details)
    }

    /// The approval `stage / action` of execution `id` as the pipeline's
    /// state shows it: remembered with its token for [`review`](Self::review)
    /// and said as a [`Waiting`]. `None` when the state shows no open
    /// approval of this execution (or the read failed).
    async fn open_approval(
        &self,
        id: &str,
        stage: &str,
        action: &str,
        deadline: Instant,
    ) -> Option<Waiting> {
        let client = self.client().await;
        let r = self
            .bounded(
                "GetPipelineState",
                Kind::Read,
                deadline,
                client.get_pipeline_state().name(&self.pipeline).send(),
            )
            .await;
        let gate = match r {
            Ok(out) => approval_gate(out.stage_states(), id, stage, action),
            Err(e) => {
                tracing::warn!("{}", e.cleaned());
                None
            }
        };
        let waiting = gate.as_ref().map(|g| Waiting {
            prompt: format!(
                "waiting on a human: manual approval {} / {}",
                g.stage, g.action
            ),
            can_answer: true,
        });
        self.gate.set(gate);
        waiting
    }

    /// Answer the manual approval the followed execution waits for:
    /// Approved or Rejected, with the note as the approval's summary. Sent
    /// once, never repeated.
    pub(super) async fn review(&self, answer: &Review) -> Result<String, BackendError> {
        let gate = self.gate.waiting(
            &self.name,
            "no execution of this deploy waits on a manual approval now",
        )?;
        let status = if answer.approve {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        let word = answer.word();
        let summary: String = answer.said().chars().take(SUMMARY_MAX).collect();
        let call = "PutApprovalResult";
        let result = ApprovalResult::builder()
            .summary(&summary)
            .status(status)
            .build()
            .map_err(|e| self.garbage(call, e))?;
        let client = self.client().await;
        let req = client
            .put_approval_result()
            .pipeline_name(&self.pipeline)
            .stage_name(&gate.stage)
            .action_name(&gate.action)
            .result(result)
            .token(&gate.token)
            .customize()
            .config_override(
                aws_sdk_codepipeline::config::Builder::default()
                    .retry_config(aws_sdk_codepipeline::config::retry::RetryConfig::disabled()),
            );
        let r = self
            .bounded(
                call,
                Kind::Start,
                Instant::now() + APPROVAL_TIMEOUT,
                req.send(),
            )
            .await;
        match r {
            Ok(_) => {
                self.gate.clear();
                Ok(format!(
                    "CodePipeline {}: manual approval {} / {} {word} for execution {} (summary: {summary})",
                    self.pipeline,
                    gate.stage,
                    gate.action,
                    short(&gate.execution)
                ))
            }
            Err(BackendError::Status { backend, body, .. })
                if body.starts_with("InvalidApprovalTokenException")
                    || body.starts_with("ApprovalAlreadyCompletedException") =>
            {
                self.gate.clear();
                Err(BackendError::Command {
                    backend,
                    cause: format!(
                        "the approval {} / {} is no longer open (answered elsewhere, expired or superseded): {body}",
                        gate.stage, gate.action
                    ),
                })
            }
            Err(BackendError::Status { backend, body, .. }) if body.starts_with("AccessDenied") => {
                Err(BackendError::Command {
                    backend,
                    cause: format!(
                        "AWS refused the answer: these credentials may not call codepipeline:PutApprovalResult on {}; someone who may must answer in the AWS console ({body})",
                        self.pipeline
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A request whose input could not be built.
    fn garbage(&self, call: &str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Garbage {
            backend: format!("{}: {call}", self.name),
            cause: format!("the request could not be built: {e}"),
        }
    }

    /// Await `fut` (one SDK call) within `deadline`, its error named.
    async fn bounded<T, E>(
        &self,
        call: &str,
        kind: Kind,
        deadline: Instant,
        fut: impl std::future::Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, BackendError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let named = format!("{}: {call}", self.name);
        let room = deadline.saturating_duration_since(Instant::now());
        if room.is_zero() {
            return Err(BackendError::Timeout {
                backend: named,
                after: self.timeout,
            });
        }
        let per_call = room.min(CALL_TIMEOUT + Duration::from_secs(5));
        // What bounded the call, as the user set it: the deploy's timeout
        // when its deadline cut the call short.
        let limit = if per_call == room {
            self.timeout
        } else {
            per_call
        };
        match tokio::time::timeout(per_call, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(sdk_error(&named, kind, limit, e)),
            Err(_) if kind == Kind::Start => Err(BackendError::OutcomeUnknown {
                backend: named,
                cause: format!(
                    "no answer within {}s; not repeated — it may have started: look in the AWS console before deploying again",
                    limit.as_secs()
                ),
            }),
            Err(_) => Err(BackendError::Timeout {
                backend: named,
                after: limit,
            }),
        }
    }
}

/// An SDK error as the project says errors: the system and the call, the
/// cause; a call that starts something and may have reached AWS is
/// "outcome unknown".
fn sdk_error<E>(named: &str, kind: Kind, after: Duration, e: SdkError<E>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let unknown = |cause: String| BackendError::OutcomeUnknown {
        backend: named.to_string(),
        cause: format!(
            "{cause}; not repeated — it may have started: look in the AWS console before deploying again"
        ),
    };
    let described = chain(&e);
    let refused = connection_refused(&e);
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.err();
            match err.code() {
                // A server error on a start: it may have started anyway.
                code if kind == Kind::Start && status >= 500 => unknown(format!(
                    "AWS answered HTTP {status} ({})",
                    code.unwrap_or("no error code")
                )),
                Some(code) => BackendError::Status {
                    backend: named.to_string(),
                    status,
                    body: format!("{code}: {}", err.message().unwrap_or("")),
                },
                // An answer the SDK could not read as CodePipeline's error.
                None => BackendError::Garbage {
                    backend: named.to_string(),
                    cause: format!(
                        "HTTP {status} without a CodePipeline error code: {}",
                        described
                    ),
                },
            }
        }
        SdkError::ResponseError(re) => {
            let status = re.raw().status().as_u16();
            let cause =
                format!("an answer (HTTP {status}) that is not CodePipeline's JSON: {described}");
            if kind == Kind::Start && (200..300).contains(&status) {
                unknown(cause)
            } else {
                BackendError::Garbage {
                    backend: named.to_string(),
                    cause,
                }
            }
        }
        SdkError::TimeoutError(_) if kind == Kind::Start => {
            unknown(format!("no answer within {}s", after.as_secs()))
        }
        SdkError::TimeoutError(_) => BackendError::Timeout {
            backend: named.to_string(),
            after,
        },
        SdkError::DispatchFailure(df) => {
            if kind == Kind::Start && !refused && !df.is_user() {
                unknown(format!("the answer was lost ({described})"))
            } else {
                BackendError::Unreachable {
                    backend: named.to_string(),
                    cause: described,
                }
            }
        }
        // Before anything was sent: no credentials, a bad endpoint. Before
        // a start that is a definite refusal; while following an execution
        // that did start, it only means it could not be followed (an
        // expired session): the deploy's outcome is then unknown.
        SdkError::ConstructionFailure(_) if kind == Kind::Start => BackendError::Command {
            backend: named.to_string(),
            cause: format!("the call could not be made: {described}"),
        },
        _ if kind == Kind::Start => BackendError::Command {
            backend: named.to_string(),
            cause: described,
        },
        _ => BackendError::Unreachable {
            backend: named.to_string(),
            cause: format!("the call could not be made: {described}"),
        },
    }
}

/// Whether the connection was refused: nothing reached the server.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// An error and its causes on one line: the SDK's top-level messages
/// ("dispatch failure") say little on their own.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// "InProgress" → "in progress".
fn words(status: &str) -> String {
    let mut out = String::new();
    for (i, c) in status.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first 8 characters of an execution id (a UUID), as the console
/// shows it.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// An idempotency token for StartPipelineExecution: unique per attempt.
fn request_token(env: &str, version: &Version) -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let d = Sha256::digest(format!("{env}\n{version}\n{now}\n{}", std::process::id()));
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Pages of `ListActionExecutions` read per step: an execution's actions
/// (100 a page by default) fit many times over; a token that never ends
/// cannot keep a step going.
const MAX_ACTION_PAGES: usize = 10;

/// From `ListActionExecutions`: "stage / action" of the actions in
/// progress, and the manual approval among them, if one is.
fn in_progress(details: &[ActionExecutionDetail]) -> (Option<String>, Option<(String, String)>) {
    let running: Vec<&ActionExecutionDetail> = details
        .iter()
        .filter(|d| d.status().map(|s| s.as_str()) == Some("InProgress"))
        .collect();
    let step = (!running.is_empty()).then(|| {
        running
            .iter()
            .rev()
            .map(|d| {
                format!(
                    "{} / {}",
                    d.stage_name().unwrap_or("?"),
                    d.action_name().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    let approval = running
        .iter()
        .find(|d| {
            d.input()
                .and_then(|i| i.action_type_id())
                .is_some_and(|t| t.category().as_str() == "Approval")
        })
        .and_then(|d| Some((d.stage_name()?.to_string(), d.action_name()?.to_string())));
    (step, approval)
}

/// From `GetPipelineState`: the open approval `stage / action` of
/// execution `id`, with its token. The stage's latest execution must be
/// this one: an approval of another execution is not ours to answer.
fn approval_gate(stages: &[StageState], id: &str, stage: &str, action: &str) -> Option<Gate> {
    let s = stages.iter().find(|s| s.stage_name() == Some(stage))?;
    if let Some(latest) = s.latest_execution()
        && latest.pipeline_execution_id() != id
    {
        return None;
    }
    let a = s
        .action_states()
        .iter()
        .find(|a| a.action_name() == Some(action))?;
    let ex = a.latest_execution()?;
    if ex.status().map(|s| s.as_str()) != Some("InProgress") {
        return None;
    }
    let token = ex.token().filter(|t| !t.is_empty())?;
    Some(Gate {
        execution: id.to_string(),
        stage: stage.to_string(),
        action: action.to_string(),
        token: token.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionExecution, ActionExecutionInput, ActionExecutionStatus, ActionOwner,
        ActionState, ActionTypeId, StageExecution, StageExecutionStatus,
    };

    fn detail(
        stage: &str,
        action: &str,
        status: &str,
        category: ActionCategory,
    ) -> ActionExecutionDetail {
        ActionExecutionDetail::builder()
            .stage_name(stage)
            .action_name(action)
            .status(ActionExecutionStatus::from(status))
            .input(
                ActionExecutionInput::builder()
                    .action_type_id(
                        ActionTypeId::builder()
                            .category(category)
                            .owner(ActionOwner::Aws)
                            .provider("Manual")
                            .version("1")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn the_actions_in_progress_name_the_step_and_the_approval() {
        let d = [
            detail(
                "Approve",
                "ReleaseGate",
                "InProgress",
                ActionCategory::Approval,
            ),
            detail("Build", "Compile", "Succeeded", ActionCategory::Build),
        ];
        let (step, approval) = in_progress(&d);
        assert_eq!(step.as_deref(), Some("Approve / ReleaseGate"));
        assert_eq!(
            approval,
            Some(("Approve".to_string(), "ReleaseGate".to_string()))
        );
        let d = [detail(
            "Deploy",
            "ECS",
            "InProgress",
            ActionCategory::Deploy,
        )];
        assert_eq!(in_progress(&d), (Some("Deploy / ECS".to_string()), None));
        assert_eq!(in_progress(&[]), (None, None));
    }

    fn stage(exec: &str, action_status: &str, token: Option<&str>) -> StageState {
        let mut ex = ActionExecution::builder().status(ActionExecutionStatus::from(action_status));
        if let Some(t) = token {
            ex = ex.token(t);
        }
        StageState::builder()
            .stage_name("Approve")
            .latest_execution(
                StageExecution::builder()
                    .pipeline_execution_id(exec)
                    .status(StageExecutionStatus::InProgress)
                    .build()
                    .unwrap(),
            )
            .action_states(
                ActionState::builder()
                    .action_name("ReleaseGate")
                    .latest_execution(ex.build())
                    .build(),
            )
            .build()
    }

    #[test]
    fn only_an_open_approval_of_this_execution_is_answered() {
        let ours = [stage("exec-1", "InProgress", Some("tok-1"))];
        let g = approval_gate(&ours, "exec-1", "Approve", "ReleaseGate").unwrap();
        assert_eq!(g.token, "tok-1");
        assert_eq!(
            approval_gate(&ours, "exec-2", "Approve", "ReleaseGate"),
            None
        );
        let answered = [stage("exec-1", "Succeeded", Some("tok-1"))];
        assert_eq!(
            approval_gate(&answered, "exec-1", "Approve", "ReleaseGate"),
            None
        );
        let no_token = [stage("exec-1", "InProgress", None)];
        assert_eq!(
            approval_gate(&no_token, "exec-1", "Approve", "ReleaseGate"),
            None
        );
    }

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(words("InProgress"), "in progress");
        assert_eq!(words("Succeeded"), "succeeded");
        assert_eq!(short("3f2a9c41-0d8e-4f7b-a1c2-9e8d7c6b5a40"), "3f2a9c41");
        assert_ne!(
            request_token("p", &Version::parse("v1").unwrap()),
            request_token("p", &Version::parse("v2").unwrap())
        );
    }
}

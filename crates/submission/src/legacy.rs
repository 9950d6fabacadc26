//! Port 25 during the migration (`legacy_submission = true` on an MX
//! listener): transport for everyone, exactly as the MX, and, for clients
//! that log in (after STARTTLS), the submission policy, with every use
//! recorded per login (event `port25.submission.legacy` and the usage table
//! behind `port25 migration report`). With the switch off the MX answers
//! AUTH with a reply that points to port 587.

use crate::{Submission, SubmissionPolicy};
use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::command::MailParams;
use port25_engine::sasl::Credentials;
use port25_engine::{AuthOffer, Decision, Envelope, Hooks, Message, Reset, SessionInfo};
use port25_mx::MxPolicy;
use std::sync::Arc;

pub struct LegacyMx {
    mx: Arc<MxPolicy>,
    submission: SubmissionPolicy,
}

impl LegacyMx {
    pub fn new(mx: Arc<MxPolicy>, shared: Arc<Submission>) -> LegacyMx {
        let mut submission = SubmissionPolicy::new(shared, false);
        submission.legacy = true;
        LegacyMx { mx, submission }
    }
}

/// The state of both policies: the MX's for anonymous transport, the
/// submission's for a client that logged in.
impl Hooks for LegacyMx {
    type State = (<MxPolicy as Hooks>::State, <SubmissionPolicy as Hooks>::State);

    fn auth_offer(&self, _info: &SessionInfo) -> AuthOffer {
        AuthOffer::AfterTls
    }

    async fn authenticate(&self, info: &SessionInfo, state: &mut Self::State, credentials: &Credentials) -> Decision {
        self.submission.authenticate(info, &mut state.1, credentials).await
    }

    async fn mail(
        &self,
        info: &SessionInfo,
        state: &mut Self::State,
        from: &ReversePath,
        params: &MailParams,
    ) -> Decision {
        match info.auth {
            Some(_) => self.submission.mail(info, &mut state.1, from, params).await,
            None => self.mx.mail(info, &mut state.0, from, params).await,
        }
    }

    async fn rcpt(
        &self,
        info: &SessionInfo,
        state: &mut Self::State,
        envelope: &Envelope,
        to: &ForwardPath,
    ) -> Decision {
        match info.auth {
            Some(_) => self.submission.rcpt(info, &mut state.1, envelope, to).await,
            None => self.mx.rcpt(info, &mut state.0, envelope, to).await,
        }
    }

    async fn data(
        &self,
        info: &SessionInfo,
        state: &mut Self::State,
        envelope: &Envelope,
        message: Message,
    ) -> Decision {
        match info.auth {
            Some(_) => self.submission.data(info, &mut state.1, envelope, message).await,
            None => self.mx.data(info, &mut state.0, envelope, message).await,
        }
    }

    fn reset(&self, info: &SessionInfo, state: &mut Self::State, why: Reset) {
        self.mx.reset(info, &mut state.0, why);
        self.submission.reset(info, &mut state.1, why);
    }

    fn closed(&self, info: &SessionInfo, state: &mut Self::State) {
        self.mx.closed(info, &mut state.0);
        self.submission.closed(info, &mut state.1);
    }
}

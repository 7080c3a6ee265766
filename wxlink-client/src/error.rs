//! The facade's one error type, [`Error`].
//!
//! Errors from the layers below keep their types: a failed call is
//! [`Error::Transport`] holding the [`wxlink_transport::Error`] (so a `-14`
//! is still `Api` with its [`ApiStatus`] and a timeout still says which
//! class), and a media failure is [`Error::Media`] holding the
//! [`wxlink_media::MediaError`] (so a CDN refusal keeps its status). The
//! accessors answer the questions a caller asks most:
//! [`Error::is_session_expired`], [`Error::is_timeout`], [`Error::api_status`]
//! and [`Error::may_have_been_sent`].

use wxlink_proto::ApiStatus;

use crate::account::AccountFileError;
use crate::login::LoginError;

/// Why a [`WxLinkClient`](crate::WxLinkClient) call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An iLink API call failed: connection, timeout, HTTP status, a
    /// non-zero `ret`/`errcode` (for example `-14` or a `sendmessage`
    /// rejection), or an undecodable body.
    #[error("api call failed")]
    Transport(#[source] wxlink_transport::Error),
    /// Reading, encrypting, uploading or downloading media failed.
    #[error("media operation failed")]
    Media(#[source] wxlink_media::MediaError),
    /// The client was built without a bot token, or with a blank one.
    #[error("no bot token configured")]
    MissingToken,
    /// The text to send is empty (docs/protocol.md, "Shape of a bot reply").
    #[error("text is empty")]
    EmptyText,
    /// The base URL is plain `http://` on another host, so the bot token
    /// would cross the network readable; refused unless
    /// [`ClientBuilder::allow_insecure_http`](crate::ClientBuilder::allow_insecure_http)
    /// says otherwise. Nothing was sent.
    #[error("refusing plain http to {host}: the bot token would travel unencrypted")]
    InsecureBaseUrl {
        /// The host the URL names.
        host: String,
    },
    /// An argument was unusable; the text says which and why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `getconfig` gave no typing ticket for this user, so no typing status
    /// can be sent (docs/protocol.md, "Typing tickets").
    #[error("no typing ticket for this user")]
    NoTypingTicket,
    /// A QR login failed.
    #[error("qr login failed")]
    Login(#[source] LoginError),
    /// Reading or writing an account file failed.
    #[error("account file error")]
    Account(#[source] AccountFileError),
    /// The server refused a native voice message (WeChat is known not to
    /// show outbound voice bubbles, docs/protocol.md, "Voice"). Send the audio as a file
    /// instead, or set `fallback_to_file(true)` on the voice request.
    #[error("server refused the voice message")]
    VoiceRejected {
        /// The refusal, as the server reported it.
        #[source]
        source: Box<Error>,
    },
    /// `sendmessage` answered `-3`: the recipient is not a user id the
    /// server knows as written. User ids are case-sensitive opaque strings;
    /// send to the `from_user_id` of an inbound message, unchanged.
    #[error("the server does not know the recipient {to:?}: {hint}")]
    InvalidRecipient {
        /// The `to_user_id` that was sent.
        to: String,
        /// What to check.
        hint: String,
        /// The refusal, as the server reported it.
        #[source]
        source: Box<Error>,
    },
    /// `sendmessage` answered `-2`, with the likely cause guessed from the
    /// `errmsg` and the request (see
    /// [`classify_rejection`](crate::reject::classify_rejection)).
    #[error("sendmessage rejected, likely {guess}")]
    Rejected {
        /// The likely cause and the rule that chose it.
        guess: crate::reject::RejectionGuess,
        /// The refusal, as the server reported it.
        #[source]
        source: Box<Error>,
    },
    /// A multi-message send (text chunks, or a caption and its media) failed
    /// after `sent` messages had already gone out.
    #[error("send failed after {sent} messages were sent")]
    PartiallySent {
        /// How many messages were sent before the failure.
        sent: usize,
        /// The failure.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The transport error inside, looking through wrappers (and through a
    /// media error whose `getuploadurl` call failed).
    pub fn transport(&self) -> Option<&wxlink_transport::Error> {
        match self {
            Self::Transport(e) => Some(e),
            Self::Media(e) => media_transport(e),
            Self::VoiceRejected { source }
            | Self::PartiallySent { source, .. }
            | Self::InvalidRecipient { source, .. }
            | Self::Rejected { source, .. } => source.transport(),
            _ => None,
        }
    }

    /// The likely cause of a `-2` refusal of a send, looking through
    /// wrappers; `None` for any other failure.
    pub fn rejection(&self) -> Option<crate::reject::RejectionGuess> {
        match self {
            Self::Rejected { guess, .. } => Some(*guess),
            Self::VoiceRejected { source } | Self::PartiallySent { source, .. } => {
                source.rejection()
            }
            _ => None,
        }
    }

    /// True when a send was refused with `-3` because of its recipient.
    pub fn is_invalid_recipient(&self) -> bool {
        match self {
            Self::InvalidRecipient { .. } => true,
            Self::VoiceRejected { source } | Self::PartiallySent { source, .. } => {
                source.is_invalid_recipient()
            }
            _ => false,
        }
    }

    /// The media error inside, looking through wrappers.
    pub fn media(&self) -> Option<&wxlink_media::MediaError> {
        match self {
            Self::Media(e) => Some(e),
            Self::VoiceRejected { source }
            | Self::PartiallySent { source, .. }
            | Self::InvalidRecipient { source, .. }
            | Self::Rejected { source, .. } => source.media(),
            _ => None,
        }
    }

    /// True when the server said the session expired (`-14`): the token is
    /// no longer valid and a new QR login is needed (docs/protocol.md, "Status and errors").
    pub fn is_session_expired(&self) -> bool {
        self.transport()
            .is_some_and(wxlink_transport::Error::is_session_expired)
    }

    /// True when a call or transfer ran out of time.
    pub fn is_timeout(&self) -> bool {
        self.transport()
            .is_some_and(wxlink_transport::Error::is_timeout)
            || self.media().is_some_and(media_is_timeout)
    }

    /// True when a plain-HTTP URL off this machine was refused (a base URL,
    /// a login's redirect host or its confirmed base URL).
    pub fn is_insecure_url(&self) -> bool {
        matches!(
            self,
            Self::InsecureBaseUrl { .. } | Self::Login(LoginError::InsecureUrl { .. })
        )
    }

    /// The `ret`/`errcode`/`errmsg` the server returned, when the failure
    /// was a business error in the response body.
    pub fn api_status(&self) -> Option<&ApiStatus> {
        self.transport()
            .and_then(wxlink_transport::Error::api_status)
    }

    /// Whether the server may have acted on the request, so that sending it
    /// again could deliver a message twice. `false` only when the request
    /// certainly never left (a refused argument, a connect failure).
    pub fn may_have_been_sent(&self) -> bool {
        match self {
            Self::Transport(e) => e.may_have_been_sent(),
            // An upload alone delivers no message; a failure after a sent
            // caption is wrapped in `PartiallySent`.
            Self::Media(_) => false,
            Self::MissingToken
            | Self::EmptyText
            | Self::InvalidArgument(_)
            | Self::InsecureBaseUrl { .. }
            | Self::NoTypingTicket
            | Self::Account(_) => false,
            Self::Login(_) => false,
            Self::VoiceRejected { source }
            | Self::InvalidRecipient { source, .. }
            | Self::Rejected { source, .. } => source.may_have_been_sent(),
            Self::PartiallySent { .. } => true,
        }
    }
}

impl From<wxlink_transport::Error> for Error {
    fn from(e: wxlink_transport::Error) -> Self {
        Self::Transport(e)
    }
}

impl From<wxlink_media::MediaError> for Error {
    fn from(e: wxlink_media::MediaError) -> Self {
        Self::Media(e)
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        Self::Login(e)
    }
}

impl From<AccountFileError> for Error {
    fn from(e: AccountFileError) -> Self {
        Self::Account(e)
    }
}

/// The transport error behind a media failure (`getuploadurl` goes through
/// the API client).
fn media_transport(e: &wxlink_media::MediaError) -> Option<&wxlink_transport::Error> {
    match e {
        wxlink_media::MediaError::Api { source } => Some(source),
        _ => None,
    }
}

/// Whether a media failure was a timeout: a fetch or download that ran out
/// of time, or an upload attempt that did (the media layer wraps those in
/// `Http` so that they are retried).
fn media_is_timeout(e: &wxlink_media::MediaError) -> bool {
    use wxlink_media::MediaError;
    match e {
        MediaError::Timeout { .. } | MediaError::Stalled { .. } => true,
        MediaError::Http { source } => {
            source
                .downcast_ref::<MediaError>()
                .is_some_and(media_is_timeout)
                || source
                    .downcast_ref::<wxlink_transport::Error>()
                    .is_some_and(wxlink_transport::Error::is_timeout)
        }
        MediaError::NotReplayable { last: Some(last) } => media_is_timeout(last),
        _ => false,
    }
}

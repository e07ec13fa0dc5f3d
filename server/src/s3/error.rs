//! S3 errors: a code, an HTTP status and a message, rendered as the standard
//! `<Error>` document (which, unlike success documents, has no namespace).

use http::StatusCode;
use std::borrow::Cow;
use std::fmt;

macro_rules! s3_codes {
    ($($name:ident $(= $code:literal)? => $status:expr, $message:expr;)*) => {
        /// Every S3 error code this server returns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum S3ErrorCode { $($name,)* }

        impl S3ErrorCode {
            /// The code as S3 spells it (a few contain dots).
            pub fn as_str(self) -> &'static str {
                match self { $(S3ErrorCode::$name => s3_codes!(@code $name $($code)?),)* }
            }
            pub fn status(self) -> StatusCode {
                match self { $(S3ErrorCode::$name => $status,)* }
            }
            pub fn default_message(self) -> &'static str {
                match self { $(S3ErrorCode::$name => $message,)* }
            }
        }
    };
    (@code $name:ident $code:literal) => { $code };
    (@code $name:ident) => { stringify!($name) };
}

s3_codes! {
    AccessDenied => StatusCode::FORBIDDEN, "Access Denied";
    AuthorizationHeaderMalformed => StatusCode::BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => StatusCode::BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadRequest => StatusCode::BAD_REQUEST, "Insufficient information. Origin request header needed.";
    BadDigest => StatusCode::BAD_REQUEST, "The Content-MD5 you specified did not match what we received.";
    BucketAlreadyExists => StatusCode::CONFLICT, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.";
    BucketAlreadyOwnedByYou => StatusCode::CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => StatusCode::CONFLICT, "The bucket you tried to delete is not empty.";
    EntityTooLarge => StatusCode::BAD_REQUEST, "Your proposed upload exceeds the maximum allowed size.";
    EntityTooSmall => StatusCode::BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IncompleteBody => StatusCode::BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => StatusCode::INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => StatusCode::FORBIDDEN, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => StatusCode::BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => StatusCode::BAD_REQUEST, "The specified bucket is not valid.";
    InvalidDigest => StatusCode::BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidLocationConstraint => StatusCode::BAD_REQUEST, "The specified location constraint is not valid.";
    InvalidPart => StatusCode::BAD_REQUEST, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.";
    InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable";
    InvalidPartOrder => StatusCode::BAD_REQUEST, "The list of parts was not in ascending order. The parts list must be specified in order by part number.";
    InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => StatusCode::BAD_REQUEST, "Invalid Request";
    InvalidStorageClass => StatusCode::BAD_REQUEST, "The storage class you specified is not valid.";
    InvalidURI => StatusCode::BAD_REQUEST, "Couldn't parse the specified URI.";
    KeyTooLongError => StatusCode::BAD_REQUEST, "Your key is too long.";
    MalformedACLError => StatusCode::BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MalformedXML => StatusCode::BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MetadataTooLarge => StatusCode::BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    RequestHeaderSectionTooLarge => StatusCode::BAD_REQUEST, "Your request header section exceeds the maximum allowed size.";
    MissingContentLength => StatusCode::LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    MissingSecurityHeader => StatusCode::BAD_REQUEST, "Your request is missing a required header.";
    NoSuchBucket => StatusCode::NOT_FOUND, "The specified bucket does not exist.";
    NoSuchKey => StatusCode::NOT_FOUND, "The specified key does not exist.";
    NoSuchUpload => StatusCode::NOT_FOUND, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.";
    NoSuchVersion => StatusCode::NOT_FOUND, "The specified version does not exist.";
    NotImplemented => StatusCode::NOT_IMPLEMENTED, "A header or query you provided implies functionality that is not implemented.";
    NotModified => StatusCode::NOT_MODIFIED, "Not Modified";
    PreconditionFailed => StatusCode::PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold";
    RequestTimeout => StatusCode::BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period.";
    RequestTimeTooSkewed => StatusCode::FORBIDDEN, "The difference between the request time and the server's time is too large.";
    ConditionalRequestConflict => StatusCode::CONFLICT, "A conflicting operation occurred. If using PutObject you can retry the request.";
    SignatureDoesNotMatch => StatusCode::FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SlowDown => StatusCode::SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    UnexpectedContent => StatusCode::BAD_REQUEST, "This request does not support content.";
    UnresolvableGrantByEmailAddress => StatusCode::BAD_REQUEST, "The e-mail address you provided does not match any account on record.";
    XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
    InvalidObjectState => StatusCode::FORBIDDEN, "The operation is not valid for the current state of the object.";
    IllegalLocationConstraintException => StatusCode::BAD_REQUEST, "The specified location-constraint is not valid for this endpoint.";
    InvalidTag => StatusCode::BAD_REQUEST, "The tag provided was not a valid tag.";
    NoSuchTagSet => StatusCode::NOT_FOUND, "The TagSet does not exist";
    NoSuchCORSConfiguration => StatusCode::NOT_FOUND, "The CORS configuration does not exist";
    InvalidBucketState => StatusCode::CONFLICT, "The request is not valid with the current state of the bucket.";
    ObjectLockConfigurationNotFoundError => StatusCode::NOT_FOUND, "Object Lock configuration does not exist for this bucket";
    NoSuchObjectLockConfiguration => StatusCode::NOT_FOUND, "The specified object does not have a ObjectLock configuration";
    InvalidRetentionPeriod => StatusCode::BAD_REQUEST, "The retention period must be a positive integer value.";
    ServerSideEncryptionConfigurationNotFoundError => StatusCode::NOT_FOUND, "The server side encryption configuration was not found";
    InvalidEncryptionAlgorithmError => StatusCode::BAD_REQUEST, "The Encryption request you specified is not valid. Supported value: AES256.";
    NoSuchLifecycleConfiguration => StatusCode::NOT_FOUND, "The lifecycle configuration does not exist";
    MalformedPOSTRequest => StatusCode::BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    InvalidPolicyDocument => StatusCode::BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    MalformedPolicy => StatusCode::BAD_REQUEST, "Policies must be valid JSON and the first byte must be '{'";
    NoSuchBucketPolicy => StatusCode::NOT_FOUND, "The bucket policy does not exist";
    NoSuchPublicAccessBlockConfiguration => StatusCode::NOT_FOUND, "The public access block configuration was not found";
    OwnershipControlsNotFoundError => StatusCode::NOT_FOUND, "The bucket ownership controls were not found";
    AccessControlListNotSupported => StatusCode::BAD_REQUEST, "The bucket does not allow ACLs";
    InvalidBucketAclWithObjectOwnership => StatusCode::BAD_REQUEST, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting";
    KmsNotFound = "KMS.NotFoundException" => StatusCode::BAD_REQUEST, "Invalid keyId";
}

/// A failed S3 request. The request id and resource are filled in when the
/// response is rendered, so handlers only say what went wrong.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra elements some clients read (`BucketName`, `Key`, `Condition`, …).
    pub details: Vec<(Cow<'static, str>, String)>,
    /// Extra response headers (`Content-Range` on 416, `Allow` on 405, …).
    pub headers: Vec<(&'static str, String)>,
    /// Where AWS answers a code with another status than its usual one.
    status: Option<StatusCode>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        S3Error {
            code,
            message: code.default_message().to_string(),
            details: Vec::new(),
            headers: Vec::new(),
            status: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            message: message.into(),
            ..S3Error::new(code)
        }
    }

    pub fn detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((Cow::Borrowed(name), value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn internal(context: impl fmt::Display) -> Self {
        tracing::error!(error = %context, "internal error");
        S3Error::new(S3ErrorCode::InternalError)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        S3Error::with_message(S3ErrorCode::InvalidArgument, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        S3Error::with_message(S3ErrorCode::InvalidRequest, message)
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        S3Error::new(S3ErrorCode::NoSuchBucket).detail("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> Self {
        S3Error::new(S3ErrorCode::NoSuchKey).detail("Key", key)
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    /// The `<Error>` document for this error.
    pub fn to_xml(&self, resource: &str, request_id: &str, host_id: &str) -> String {
        let mut w = crate::s3::xml::XmlWriter::document();
        w.open("Error");
        w.element("Code", self.code.as_str());
        w.element("Message", &self.message);
        for (name, value) in &self.details {
            w.element(name, value);
        }
        w.element("Resource", resource);
        w.element("RequestId", request_id);
        w.element("HostId", host_id);
        w.close("Error");
        w.finish()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        S3Error::new(code)
    }
}

pub type S3Result<T> = Result<T, S3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_standard_error_document() {
        let xml = S3Error::no_such_key("a&b").to_xml("/bkt/a&b", "REQ1", "HOST");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(xml.contains("<Error><Code>NoSuchKey</Code>"));
        assert!(xml.contains("<Key>a&amp;b</Key>"));
        assert!(xml.contains("<Resource>/bkt/a&amp;b</Resource>"));
        assert!(xml.contains("<RequestId>REQ1</RequestId>"));
        assert!(!xml.contains("xmlns"));
        assert_eq!(S3ErrorCode::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(S3ErrorCode::InvalidRange.status().as_u16(), 416);
    }
}

//! Access control lists: the stored model, canned ACLs and the one place that
//! decides whether a requester may do something (DESIGN.md §2, step 5).

use serde::{Deserialize, Serialize};

pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "FULL_CONTROL")]
    FullControl,
    #[serde(rename = "READ")]
    Read,
    #[serde(rename = "WRITE")]
    Write,
    #[serde(rename = "READ_ACP")]
    ReadAcp,
    #[serde(rename = "WRITE_ACP")]
    WriteAcp,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "FULL_CONTROL" => Permission::FullControl,
            "READ" => Permission::Read,
            "WRITE" => Permission::Write,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE_ACP" => Permission::WriteAcp,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    User { id: String, display_name: String },
    Group { uri: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: Owner,
    pub grants: Vec<Grant>,
}

/// Who is asking: an authenticated user, or nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    Anonymous,
    User(Owner),
}

impl Requester {
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Requester::User(o) => Some(o),
            Requester::Anonymous => None,
        }
    }
}

/// The canned ACLs S3 knows (`x-amz-acl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
    LogDeliveryWrite,
}

impl CannedAcl {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "private" => CannedAcl::Private,
            "public-read" => CannedAcl::PublicRead,
            "public-read-write" => CannedAcl::PublicReadWrite,
            "authenticated-read" => CannedAcl::AuthenticatedRead,
            "aws-exec-read" => CannedAcl::AwsExecRead,
            "bucket-owner-read" => CannedAcl::BucketOwnerRead,
            "bucket-owner-full-control" => CannedAcl::BucketOwnerFullControl,
            "log-delivery-write" => CannedAcl::LogDeliveryWrite,
            _ => return None,
        })
    }

    /// The ACL this canned name stands for. `bucket_owner` matters only for
    /// the `bucket-owner-*` ACLs on objects.
    pub fn to_acl(self, owner: &Owner, bucket_owner: Option<&Owner>) -> Acl {
        let mut acl = Acl::private(owner);
        let group = |uri: &str, permission| Grant {
            grantee: Grantee::Group { uri: uri.into() },
            permission,
        };
        match self {
            CannedAcl::Private => {}
            CannedAcl::PublicRead => acl.grants.push(group(ALL_USERS, Permission::Read)),
            CannedAcl::PublicReadWrite => {
                acl.grants.push(group(ALL_USERS, Permission::Read));
                acl.grants.push(group(ALL_USERS, Permission::Write));
            }
            CannedAcl::AuthenticatedRead => acl
                .grants
                .push(group(AUTHENTICATED_USERS, Permission::Read)),
            CannedAcl::AwsExecRead => {}
            CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {
                if let Some(bucket_owner) = bucket_owner.filter(|b| b.id != owner.id) {
                    acl.grants.push(Grant {
                        grantee: Grantee::User {
                            id: bucket_owner.id.clone(),
                            display_name: bucket_owner.display_name.clone(),
                        },
                        permission: if self == CannedAcl::BucketOwnerRead {
                            Permission::Read
                        } else {
                            Permission::FullControl
                        },
                    });
                }
            }
            CannedAcl::LogDeliveryWrite => {
                acl.grants.push(group(LOG_DELIVERY, Permission::Write));
                acl.grants.push(group(LOG_DELIVERY, Permission::ReadAcp));
            }
        }
        acl
    }
}

impl Grant {
    /// A grant to everyone or to every signed-in user.
    pub fn is_public(&self) -> bool {
        matches!(&self.grantee, Grantee::Group { uri } if uri == ALL_USERS || uri == AUTHENTICATED_USERS)
    }
}

impl Acl {
    /// Does any grant reach beyond named users (Block Public Access)?
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(Grant::is_public)
    }

    /// Owner with FULL_CONTROL and nothing else: the default for new resources.
    pub fn private(owner: &Owner) -> Self {
        Acl {
            owner: owner.clone(),
            grants: vec![Grant {
                grantee: Grantee::User {
                    id: owner.id.clone(),
                    display_name: owner.display_name.clone(),
                },
                permission: Permission::FullControl,
            }],
        }
    }

    /// May `requester` exercise `permission` on the resource this ACL guards?
    ///
    /// The owner may always read and change the ACL itself; data access, even
    /// for the owner, follows the grants (as in S3, an owner who removed their
    /// own grants can no longer write).
    pub fn allows(&self, requester: &Requester, permission: Permission) -> bool {
        self.allows_with(requester, permission, false)
    }

    /// [`Acl::allows`], counting grants to everyone and to all signed-in
    /// users only unless `ignore_public` (Block Public Access).
    pub fn allows_with(
        &self,
        requester: &Requester,
        permission: Permission,
        ignore_public: bool,
    ) -> bool {
        if let Requester::User(user) = requester
            && user.id == self.owner.id
            && matches!(permission, Permission::ReadAcp | Permission::WriteAcp)
        {
            return true;
        }
        self.grants.iter().any(|grant| {
            if ignore_public && grant.is_public() {
                return false;
            }
            let applies = match (&grant.grantee, requester) {
                (Grantee::Group { uri }, _) if uri == ALL_USERS => true,
                (Grantee::Group { uri }, Requester::User(_)) if uri == AUTHENTICATED_USERS => true,
                (Grantee::User { id, .. }, Requester::User(user)) => *id == user.id,
                _ => false,
            };
            applies
                && (grant.permission == permission || grant.permission == Permission::FullControl)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str) -> Owner {
        Owner {
            id: id.into(),
            display_name: id.into(),
        }
    }

    #[test]
    fn private_allows_only_the_owner() {
        let acl = Acl::private(&owner("alice"));
        let alice = Requester::User(owner("alice"));
        let bob = Requester::User(owner("bob"));
        assert!(acl.allows(&alice, Permission::Read));
        assert!(acl.allows(&alice, Permission::Write));
        assert!(!acl.allows(&bob, Permission::Read));
        assert!(!acl.allows(&Requester::Anonymous, Permission::Read));
    }

    #[test]
    fn canned_acls_grant_groups() {
        let alice = owner("alice");
        let bob = Requester::User(owner("bob"));
        let public = CannedAcl::PublicRead.to_acl(&alice, None);
        assert!(public.allows(&Requester::Anonymous, Permission::Read));
        assert!(!public.allows(&Requester::Anonymous, Permission::Write));
        let authenticated = CannedAcl::AuthenticatedRead.to_acl(&alice, None);
        assert!(authenticated.allows(&bob, Permission::Read));
        assert!(!authenticated.allows(&Requester::Anonymous, Permission::Read));
        let rw = CannedAcl::PublicReadWrite.to_acl(&alice, None);
        assert!(rw.allows(&Requester::Anonymous, Permission::Write));
        let full = CannedAcl::BucketOwnerFullControl.to_acl(&alice, Some(&owner("bob")));
        assert!(full.allows(&bob, Permission::WriteAcp));
    }

    #[test]
    fn owner_keeps_acp_without_grants() {
        let acl = Acl {
            owner: owner("alice"),
            grants: vec![],
        };
        let alice = Requester::User(owner("alice"));
        assert!(acl.allows(&alice, Permission::ReadAcp));
        assert!(acl.allows(&alice, Permission::WriteAcp));
        assert!(!acl.allows(&alice, Permission::Write));
    }
}

use super::pattern::wildcard_match;
use super::*;
use std::collections::HashMap;

const ALICE: Principal = Principal::User {
    id: "a11ce",
    name: "alice",
};
const BOB: Principal = Principal::User {
    id: "b0b",
    name: "bob",
};

fn policy(statements: &str) -> Policy {
    Policy::parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
        "photos",
    )
    .unwrap()
}

fn refused(text: &str) -> String {
    Policy::parse(text, "photos").unwrap_err().0
}

fn decide(
    policy: &Policy,
    principal: Principal,
    action: &str,
    resource: &str,
    keys: &[(&str, &[&str])],
) -> Decision {
    let keys: HashMap<String, Vec<String>> = keys
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect();
    policy.evaluate(&RequestContext {
        principal,
        action,
        resource,
        keys: &keys,
    })
}

const OBJ: &str = "arn:aws:s3:::photos/2024/cat.jpg";

#[test]
fn wildcards_match_as_iam_does() {
    assert!(wildcard_match("s3:Get*", "s3:GetObject", false));
    assert!(wildcard_match("S3:get*", "s3:GetObject", true));
    assert!(!wildcard_match("S3:get*", "s3:GetObject", false));
    assert!(wildcard_match("arn:aws:s3:::photos/*/cat.???", OBJ, false));
    assert!(wildcard_match("*", "", false));
    assert!(!wildcard_match("a*b", "acbx", false));
    assert!(wildcard_match("a*b*c", "aXbYbZc", false));
}

#[test]
fn public_read_of_a_prefix_allows_anyone_there_only() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::photos/2024/*"}"#,
    );
    assert_eq!(
        decide(&p, Principal::Anonymous, "s3:GetObject", OBJ, &[]),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &p,
            Principal::Anonymous,
            "s3:GetObject",
            "arn:aws:s3:::photos/private/x",
            &[]
        ),
        Decision::Unmatched
    );
    assert_eq!(
        decide(&p, Principal::Anonymous, "s3:PutObject", OBJ, &[]),
        Decision::Unmatched
    );
    assert!(p.is_public());
}

#[test]
fn an_explicit_deny_overrides_any_allow() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"},
           {"Sid":"nobob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::b0b:user/bob"},
            "Action":["s3:DeleteObject","s3:PutObject"],"Resource":"arn:aws:s3:::photos/*"}"#,
    );
    assert_eq!(decide(&p, ALICE, "s3:PutObject", OBJ, &[]), Decision::Allow);
    assert_eq!(decide(&p, BOB, "s3:PutObject", OBJ, &[]), Decision::Deny);
    assert_eq!(decide(&p, BOB, "s3:GetObject", OBJ, &[]), Decision::Allow);
}

#[test]
fn principals_name_users_by_account_root_arn_or_canonical_id() {
    for principal in [
        r#"{"AWS":"a11ce"}"#,
        r#"{"AWS":"arn:aws:iam::a11ce:root"}"#,
        r#"{"AWS":["x","arn:aws:iam::a11ce:user/alice"]}"#,
        r#"{"CanonicalUser":"a11ce"}"#,
    ] {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#
        ));
        assert_eq!(
            decide(&p, ALICE, "s3:GetObject", OBJ, &[]),
            Decision::Allow,
            "{principal}"
        );
        assert_eq!(
            decide(&p, BOB, "s3:GetObject", OBJ, &[]),
            Decision::Unmatched
        );
        assert_eq!(
            decide(&p, Principal::Anonymous, "s3:GetObject", OBJ, &[]),
            Decision::Unmatched
        );
        assert!(!p.is_public());
    }
}

#[test]
fn not_principal_not_action_and_not_resource_invert_their_lists() {
    assert!(refused(
        r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"a11ce"},"Action":"s3:*","Resource":"*"}}"#
    )
    .contains("NotPrincipal"));
    let p = policy(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"a11ce"},"NotAction":"s3:Get*",
            "NotResource":"arn:aws:s3:::photos/public/*"}"#,
    );
    assert_eq!(decide(&p, BOB, "s3:PutObject", OBJ, &[]), Decision::Deny);
    assert_eq!(
        decide(&p, ALICE, "s3:PutObject", OBJ, &[]),
        Decision::Unmatched
    );
    assert_eq!(
        decide(&p, BOB, "s3:GetObject", OBJ, &[]),
        Decision::Unmatched
    );
    assert_eq!(
        decide(&p, BOB, "s3:PutObject", "arn:aws:s3:::photos/public/a", &[]),
        Decision::Unmatched
    );
}

fn with_condition(condition: &str) -> Policy {
    policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"],
            "Condition":{condition}}}"#
    ))
}

fn allowed(p: &Policy, keys: &[(&str, &[&str])]) -> bool {
    decide(p, ALICE, "s3:ListBucket", "arn:aws:s3:::photos", keys) == Decision::Allow
}

#[test]
fn string_conditions() {
    let p = with_condition(r#"{"StringEquals":{"s3:prefix":["home/","public/"]}}"#);
    assert!(allowed(&p, &[("s3:prefix", &["public/"])]));
    assert!(!allowed(&p, &[("s3:prefix", &["Public/"])]));
    assert!(!allowed(&p, &[]));
    let p = with_condition(r#"{"StringNotEquals":{"s3:prefix":"secret/"}}"#);
    assert!(allowed(&p, &[("s3:prefix", &["public/"])]));
    assert!(!allowed(&p, &[("s3:prefix", &["secret/"])]));
    assert!(allowed(&p, &[]), "a negated test holds without the key");
    let p = with_condition(r#"{"StringEqualsIgnoreCase":{"s3:prefix":"HOME/"}}"#);
    assert!(allowed(&p, &[("s3:prefix", &["home/"])]));
    let p = with_condition(r#"{"StringLike":{"s3:prefix":"home/*"}}"#);
    assert!(allowed(&p, &[("s3:prefix", &["home/alice/"])]));
    assert!(!allowed(&p, &[("s3:prefix", &["etc/"])]));
    let p = with_condition(r#"{"StringNotLike":{"s3:prefix":["home/*","tmp/*"]}}"#);
    assert!(!allowed(&p, &[("s3:prefix", &["tmp/x"])]));
    assert!(allowed(&p, &[("s3:prefix", &["etc/"])]));
}

#[test]
fn keys_are_case_insensitive_and_all_conditions_must_hold() {
    let p = with_condition(
        r#"{"StringEquals":{"S3:Prefix":"a/","s3:delimiter":"/"},"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
    );
    let ok = [
        ("s3:prefix", &["a/"][..]),
        ("s3:delimiter", &["/"][..]),
        ("s3:max-keys", &["10"][..]),
    ];
    assert!(allowed(&p, &ok));
    let mut too_many = ok;
    too_many[2] = ("s3:max-keys", &["11"]);
    assert!(!allowed(&p, &too_many));
    assert!(!allowed(&p, &ok[..2]));
}

#[test]
fn numeric_date_bool_and_null_conditions() {
    let p = with_condition(r#"{"NumericGreaterThan":{"s3:max-keys":5}}"#);
    assert!(allowed(&p, &[("s3:max-keys", &["6"])]));
    assert!(!allowed(&p, &[("s3:max-keys", &["5"])]));
    assert!(!allowed(&p, &[("s3:max-keys", &["many"])]));
    let p = with_condition(r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#);
    assert!(allowed(
        &p,
        &[("aws:currenttime", &["2026-12-02T05:00:00Z"])]
    ));
    assert!(!allowed(
        &p,
        &[("aws:currenttime", &["2031-01-01T00:00:00Z"])]
    ));
    let p = with_condition(r#"{"DateGreaterThanEquals":{"aws:EpochTime":"1700000000"}}"#);
    assert!(allowed(&p, &[("aws:epochtime", &["1800000000"])]));
    let p = with_condition(r#"{"Bool":{"aws:SecureTransport":false}}"#);
    assert!(allowed(&p, &[("aws:securetransport", &["false"])]));
    assert!(!allowed(&p, &[("aws:securetransport", &["true"])]));
    let p = with_condition(r#"{"Null":{"s3:x-amz-server-side-encryption":"true"}}"#);
    assert!(allowed(&p, &[]));
    assert!(!allowed(
        &p,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
    let p = with_condition(r#"{"Null":{"s3:x-amz-server-side-encryption":"false"}}"#);
    assert!(allowed(
        &p,
        &[("s3:x-amz-server-side-encryption", &["AES256"])]
    ));
}

#[test]
fn ip_conditions_and_public_status() {
    let p = with_condition(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#);
    assert!(allowed(&p, &[("aws:sourceip", &["10.1.2.3"])]));
    assert!(allowed(&p, &[("aws:sourceip", &["2001:db8::1"])]));
    assert!(!allowed(&p, &[("aws:sourceip", &["127.0.0.1"])]));
    assert!(!p.is_public(), "pinned to networks");
    let p = with_condition(r#"{"NotIpAddress":{"aws:SourceIp":"192.168.0.1"}}"#);
    assert!(!allowed(&p, &[("aws:sourceip", &["192.168.0.1"])]));
    assert!(allowed(&p, &[("aws:sourceip", &["192.168.0.2"])]));
    assert!(p.is_public(), "a negated condition admits the world");
    let p = with_condition(r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#);
    assert!(p.is_public());
}

#[test]
fn if_exists_and_set_qualifiers() {
    let p = with_condition(r#"{"StringEqualsIfExists":{"s3:x-amz-acl":"private"}}"#);
    assert!(allowed(&p, &[]));
    assert!(allowed(&p, &[("s3:x-amz-acl", &["private"])]));
    assert!(!allowed(&p, &[("s3:x-amz-acl", &["public-read"])]));
    let p =
        with_condition(r#"{"ForAllValues:StringEquals":{"s3:requestobjecttagkeys":["a","b"]}}"#);
    assert!(allowed(&p, &[("s3:requestobjecttagkeys", &["a", "b"])]));
    assert!(!allowed(&p, &[("s3:requestobjecttagkeys", &["a", "c"])]));
    assert!(allowed(&p, &[]));
    let p = with_condition(r#"{"ForAnyValue:StringEquals":{"s3:requestobjecttagkeys":["a"]}}"#);
    assert!(allowed(&p, &[("s3:requestobjecttagkeys", &["c", "a"])]));
    assert!(!allowed(&p, &[("s3:requestobjecttagkeys", &["c"])]));
}

#[test]
fn arn_conditions_match_patterns() {
    let p = with_condition(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/ali*"}}"#);
    assert!(allowed(
        &p,
        &[("aws:principalarn", &["arn:aws:iam::a11ce:user/alice"])]
    ));
    assert!(!allowed(
        &p,
        &[("aws:principalarn", &["arn:aws:iam::b0b:user/bob"])]
    ));
}

#[test]
fn malformed_policies_name_the_statement() {
    assert!(refused("not json").contains("valid JSON"));
    assert!(refused("[]").contains("first byte"));
    assert!(refused(r#"{"Version":"2012-10-17"}"#).contains("Statement"));
    assert!(refused(r#"{"Version":"2019-01-01","Statement":[]}"#).contains("version"));
    let base = |s: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#);
    let e = refused(&base(
        r#"{"Sid":"s1","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}"#,
    ));
    assert_eq!(e, "Missing required field Principal in statement \"s1\"");
    let e = refused(&base(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"},
           {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}"#,
    ));
    assert_eq!(
        e,
        "Policy has invalid resource arn:aws:s3:::other/* in statement 2"
    );
    assert!(
        refused(&base(
            r#"{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#
        ))
        .contains("effect")
    );
    assert!(
        refused(&base(
            r#"{"Effect":"Allow","Principal":"*","Action":"ec2:RunInstances","Resource":"*"}"#
        ))
        .contains("invalid action")
    );
    assert!(
        refused(&base(
            r#"{"Effect":"Allow","Principal":"me","Action":"s3:*","Resource":"*"}"#
        ))
        .contains("Invalid principal")
    );
    assert!(refused(&base(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringSort":{"s3:prefix":"a"}}}"#
    ))
    .contains("Invalid Condition type"));
    assert!(refused(&base(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"nowhere"}}}"#
    ))
    .contains("nowhere"));
    assert!(refused(&base(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"ec2:Vpc":"a"}}}"#
    ))
    .contains("condition key"));
    assert!(
        refused(&base(
            r#"{"Sid":"x","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
           {"Sid":"x","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}"#
        ))
        .contains("unique")
    );
}

#[test]
fn a_single_statement_object_and_wildcard_buckets_are_accepted() {
    let p = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket",
            "Resource":["arn:aws:s3:::*","arn:aws:s3:::*/*"]}}"#,
        "photos",
    )
    .unwrap();
    assert_eq!(
        decide(&p, BOB, "s3:ListBucket", "arn:aws:s3:::photos", &[]),
        Decision::Allow
    );
    assert!(!p.reads_key("s3:"));
}

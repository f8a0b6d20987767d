//! Remote URIs parsed: each service, the options, the timeout, bad URIs and what they
//! say, Redis Cluster, gRPC, and credentials kept out of every rendering.

use super::*;

fn parse(s: &str) -> Result<RemoteSpec, String> {
    RemoteSpec::parse(s, &RemoteDefaults::default())
}

#[test]
fn uploads_are_objects_unless_bundles_are_asked_for_and_ghac_bundles() {
    for uri in [
        "s3://b/p",
        "gcs://b/p",
        "azblob://c/p",
        "webdav://127.0.0.1:8080/p",
        "file:///tmp/x",
        "redis://127.0.0.1",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "memcached://127.0.0.1",
        "ghac?uploads=objects",
    ] {
        assert_eq!(parse(uri).unwrap().uploads, Uploads::Objects, "{uri}");
    }
    for uri in [
        "s3://b/p?uploads=bundles",
        "gcs://b/p?anonymous=true&uploads=bundles",
        "azblob://c/p?uploads=bundles",
        "webdavs://example.com/p?uploads=bundles",
        "file:///tmp/x?uploads=bundles",
        "ghac",
        "ghac?uploads=bundles",
    ] {
        assert_eq!(parse(uri).unwrap().uploads, Uploads::Bundles, "{uri}");
    }
    // A value not understood is an error naming both values.
    for uri in ["s3://b/p?uploads=bundle", "ghac?uploads=yes"] {
        let e = parse(uri).unwrap_err();
        assert!(
            e.contains("uploads=objects or uploads=bundles"),
            "{uri}: {e}"
        );
    }
    // Key-value stores serve no ranges: the option is refused, saying why.
    for uri in [
        "redis://127.0.0.1?uploads=bundles",
        "memcached://127.0.0.1?uploads=bundles",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?uploads=bundles",
    ] {
        let e = parse(uri).unwrap_err();
        assert!(e.contains("serves no ranges"), "{uri}: {e}");
    }
    let e = parse("ghac?version=2").unwrap_err();
    assert!(e.contains("unknown option `version`"), "{e}");
}

#[test]
fn writes_replace_unless_once_is_asked_for_and_ghac_keeps_each_name_once() {
    for uri in [
        "s3://b/p",
        "gcs://b/p",
        "azblob://c/p",
        "file:///tmp/x",
        "redis://h",
    ] {
        assert_eq!(parse(uri).unwrap().writes, Writes::Replace, "{uri}");
    }
    assert_eq!(
        parse("s3://b/p?writes=replace").unwrap().writes,
        Writes::Replace
    );
    for uri in [
        "s3://b/p?writes=once",
        "gcs://b/p?anonymous=true&writes=once",
        "azblob://c/p?writes=once&uploads=bundles",
        "webdav://127.0.0.1:8080/p?writes=once",
        "file:///tmp/x?writes=once",
        "ghac",
        "ghac?uploads=objects",
    ] {
        assert_eq!(parse(uri).unwrap().writes, Writes::Once, "{uri}");
    }
    // A value not understood is an error naming both values.
    let e = parse("s3://b/p?writes=never").unwrap_err();
    assert!(
        e.contains("writes=once") && e.contains("writes=replace"),
        "{e}"
    );
    // Services that replace by their own compare-and-swap take no writes=.
    for uri in [
        "redis://127.0.0.1?writes=once",
        "memcached://127.0.0.1?writes=once",
        "grpc://127.0.0.1:8980?writes=once",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?writes=once",
    ] {
        let e = parse(uri).unwrap_err();
        assert!(e.contains("writes"), "{uri}: {e}");
    }
}

#[test]
fn parses_each_service() {
    let s3 =
        parse("s3://bucket/some/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1").unwrap();
    assert_eq!(
        s3.kind,
        RemoteKind::S3 {
            bucket: "bucket".into(),
            root: "/some/prefix/".into(),
            endpoint: Some("http://127.0.0.1:8333".into()),
            region: Some("us-east-1".into()),
            virtual_host_style: false,
        }
    );
    let redis = parse("redis://:hunter2@127.0.0.1:6400/3").unwrap();
    assert_eq!(
        redis.kind,
        RemoteKind::Redis {
            endpoint: "redis://127.0.0.1:6400".into(),
            db: 3,
            username: None,
            password: Some(Secret("hunter2".into())),
        }
    );
    assert!(!redis.display().contains("hunter2"), "{}", redis.display());
    assert!(!format!("{redis:?}").contains("hunter2"));
    assert!(!format!("{:?}", redis.kind).contains("hunter2"));
    assert_eq!(
        parse("memcached://127.0.0.1:11300").unwrap().kind,
        RemoteKind::Memcached {
            endpoint: "tcp://127.0.0.1:11300".into()
        }
    );
    assert_eq!(
        parse("file:///srv/cache").unwrap().kind,
        RemoteKind::Fs {
            root: "/srv/cache".into()
        }
    );
    assert_eq!(parse("ghac").unwrap().kind, RemoteKind::Ghac);
    assert!(matches!(
        parse("gcs://b/p").unwrap().kind,
        RemoteKind::Gcs { .. }
    ));
    assert!(matches!(
        parse("azblob://c/p?account=a").unwrap().kind,
        RemoteKind::Azblob { .. }
    ));
    assert!(matches!(
        parse("webdavs://h:8443/dav").unwrap().kind,
        RemoteKind::Webdav { .. }
    ));
}

#[test]
fn the_timeout_comes_from_its_variable_and_bad_values_are_named() {
    use std::time::Duration;
    assert_eq!(parse("s3://b/p").unwrap().timeout, DEFAULT_TIMEOUT);
    for (v, d) in [
        ("500ms", Duration::from_millis(500)),
        ("3s", Duration::from_secs(3)),
        ("7", Duration::from_secs(7)),
        ("1m", Duration::from_secs(60)),
    ] {
        let defaults = RemoteDefaults {
            timeout: Some(v.into()),
            ..RemoteDefaults::default()
        };
        let spec = RemoteSpec::parse("redis://127.0.0.1:6379/0", &defaults).unwrap();
        assert_eq!(spec.timeout, d, "{v}");
    }
    for v in ["", "fast", "2h", "10ms", "11m", "-1s", "1.5s"] {
        let defaults = RemoteDefaults {
            timeout: Some(v.into()),
            ..RemoteDefaults::default()
        };
        let e = RemoteSpec::parse("s3://b/p", &defaults).unwrap_err();
        assert!(e.starts_with("XCACHE_REMOTE_TIMEOUT="), "{v}: {e}");
        assert!(e.contains("500ms") || e.contains("between"), "{v}: {e}");
    }
}

#[test]
fn bad_uris_say_how_to_fix_them() {
    let e = parse("ftp://x").unwrap_err();
    assert!(e.contains("unknown scheme") && e.contains("s3://"), "{e}");
    let e = parse("redis://h/notanumber").unwrap_err();
    assert!(e.contains("database number"), "{e}");
    let e = parse("not a uri").unwrap_err();
    assert!(e.contains("s3://bucket/prefix"), "{e}");
    let e = parse("s3://bucket?secret_key=abc").unwrap_err();
    assert!(e.contains("unknown option `secret_key`"), "{e}");
    assert!(!e.contains("abc"), "{e}");
    let e = parse("redis://h:1/0?tls=yes").unwrap_err();
    assert!(e.contains("`tls`") && e.contains("take no options"), "{e}");
    let e = parse("gcs://b/p?anonymous=yes").unwrap_err();
    assert!(e.contains("anonymous=true"), "{e}");
    // `file://relative/path` is host `relative` and path `/path`: never `/path`.
    let e = parse("file://relative/path").unwrap_err();
    assert!(e.contains("`relative`") && e.contains("file:///"), "{e}");
    assert!(parse("file://localhost/srv/c").is_ok());
}

#[test]
fn redis_cluster_uris() {
    let c =
        parse("redis+cluster://:pw%40secret@127.0.0.1:7000,localhost:7001,[::1]:7002/0").unwrap();
    assert_eq!(
        c.kind,
        RemoteKind::RedisCluster {
            nodes: vec![
                "redis://127.0.0.1:7000".into(),
                "redis://localhost:7001".into(),
                "redis://[::1]:7002".into(),
            ],
            username: None,
            password: Some(Secret("pw@secret".into())),
        }
    );
    assert_eq!(
        c.display(),
        "redis+cluster://127.0.0.1:7000,localhost:7001,[::1]:7002"
    );
    assert!(c.is_key_value());
    assert_eq!(c.scrub("a pw@secret b pw%40secret"), "a *** b ***");
    let c = parse("rediss+cluster://app:pw@h1,h2:7001").unwrap();
    assert_eq!(
        c.kind,
        RemoteKind::RedisCluster {
            nodes: vec!["rediss://h1:6379".into(), "rediss://h2:7001".into()],
            username: Some("app".into()),
            password: Some(Secret("pw".into())),
        }
    );
    // Malformed: each error names the URI (without its password) and the form.
    for (uri, want) in [
        ("redis+cluster://", "names no node"),
        ("redis+cluster://:hunter2@", "names no node"),
        ("redis+cluster://h:1,,h:2", "node 2 is empty"),
        (
            "redis+cluster://:hunter2@h:1,h:x",
            "node 2 `h:x` is not HOST:PORT",
        ),
        ("redis+cluster://h:1,h:2/3", "database 0 only"),
        (
            "redis+cluster://h:1?password=hunter2",
            "unknown option `password`",
        ),
        (
            "memcached+cluster://h:1",
            "unknown scheme `memcached+cluster:`",
        ),
    ] {
        let e = parse(uri).unwrap_err();
        assert!(e.contains(want), "{uri}: {e}");
        assert!(!e.contains("hunter2"), "{uri}: {e}");
        if !want.starts_with("unknown scheme") {
            assert!(e.starts_with("redis+cluster://"), "{e}");
        }
    }
}

#[test]
fn credentials_never_reach_the_display_and_are_scrubbed() {
    let s = parse("s3://b/p?endpoint=http://user:hunter22@127.0.0.1:9000").unwrap();
    assert!(!s.display().contains("hunter22"), "{}", s.display());
    assert!(
        s.display().contains("endpoint=http://127.0.0.1:9000"),
        "{}",
        s.display()
    );
    assert_eq!(
        s.scrub("error at http://user:hunter22@127.0.0.1:9000/x"),
        "error at http://user:***@127.0.0.1:9000/x"
    );
    let d = RemoteDefaults {
        secrets: vec![Secret("envsecret".into())],
        ..RemoteDefaults::default()
    };
    let s = RemoteSpec::parse("redis://:pw%40x@h:1/0", &d).unwrap();
    assert_eq!(s.scrub("a envsecret b pw@x c"), "a *** b *** c");
    let gcs = parse("gcs://b/p?endpoint=http://127.0.0.1:4443&anonymous=true").unwrap();
    assert!(matches!(
        gcs.kind,
        RemoteKind::Gcs {
            anonymous: true,
            endpoint: Some(_),
            ..
        }
    ));
}

#[test]
fn grpc_uris_name_a_reapi_server_and_its_instance() {
    let spec = parse("grpc://127.0.0.1:8980?instance=main").unwrap();
    assert_eq!(
        spec.kind,
        RemoteKind::Reapi {
            endpoint: "http://127.0.0.1:8980".into(),
            instance: "main".into(),
            token: None,
            auth_header: None,
        }
    );
    assert_eq!(spec.display(), "grpc://127.0.0.1:8980?instance=main");
    let tls = parse("grpcs://cache.example.com:443?auth_header=X-Api-Key&uploads=bundles").unwrap();
    assert_eq!(tls.uploads, Uploads::Bundles);
    match tls.kind {
        RemoteKind::Reapi {
            endpoint,
            instance,
            auth_header,
            ..
        } => {
            assert_eq!(endpoint, "https://cache.example.com:443");
            assert_eq!(instance, "");
            assert_eq!(auth_header.as_deref(), Some("x-api-key"));
        }
        other => panic!("{other:?}"),
    }
    let defaults = RemoteDefaults {
        token: Some(Secret("tok-12345".into())),
        ..Default::default()
    };
    let spec = RemoteSpec::parse("grpc://h:1", &defaults).unwrap();
    assert!(matches!(
        spec.kind,
        RemoteKind::Reapi { token: Some(_), .. }
    ));
}

#[test]
fn bad_grpc_uris_say_how_to_write_them() {
    for (uri, says) in [
        ("grpc://host", "names no port"),
        ("grpc://host:1/main", "?instance=NAME"),
        ("grpc://host:1?instanse=main", "unknown option `instanse`"),
        ("grpc://host:1?token=sekrit-value", "XCACHE_REMOTE_TOKEN"),
        ("grpc://host:1?auth_header=a%20b", "not a header name"),
    ] {
        let e = parse(uri).unwrap_err();
        assert!(e.contains(says), "{uri}: {e}");
        assert!(!e.contains("sekrit-value"), "{uri}: {e}");
    }
}

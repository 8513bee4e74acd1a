//! Typed documents through `serde`.

use std::sync::Arc;

use engine::Version;
use engine::{Error, IndexSettings, Versioned};
use serde::{Deserialize, Serialize};

use crate::support::dir_store;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Account {
    owner: String,
    balance: i64,
}

#[test]
fn a_typed_document_round_trips_with_its_stamp_and_conflicts_carry_evidence() {
    let (_dir, store) = dir_store();
    let accounts = store
        .create_index("accounts", IndexSettings::with_shards(2))
        .unwrap();
    let alice = Account {
        owner: "alice".into(),
        balance: 10,
    };
    let put = accounts.put("a", &alice).unwrap();
    assert_eq!(put.version, Version(1));
    let Versioned { value, stamp } = accounts.get_as::<Account>("a").unwrap().unwrap();
    assert_eq!((value, stamp), (alice.clone(), put));
    assert!(accounts.get_as::<Account>("nobody").unwrap().is_none());

    // A write conditional on a stamp someone else has moved past.
    let newer = accounts
        .put(
            "a",
            &Account {
                balance: 20,
                ..alice.clone()
            },
        )
        .unwrap();
    let err = accounts.put_if("a", &alice, put).unwrap_err();
    let evidence = err.conflict_evidence().expect("a conflict");
    assert_eq!(evidence.current, Some(newer));
    assert_eq!(
        accounts.put_if("a", &alice, newer).unwrap().version,
        Version(3)
    );

    // A source that is not an Account.
    accounts.put("x", &serde_json::json!({"owner": 5})).unwrap();
    let err = accounts.get_as::<Account>("x").unwrap_err();
    assert_eq!(err.es_type(), "illegal_argument_exception", "{err}");
    assert!(err.reason().contains("[x]"), "{err}");
}

#[test]
fn update_with_retries_on_conflict_and_loses_no_change() {
    let (_dir, store) = dir_store();
    let accounts = store
        .create_index("bank", IndexSettings::default())
        .unwrap();
    accounts.put("acc", &Account::default()).unwrap();
    let (threads, each) = (8, 50);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let accounts = Arc::clone(&accounts);
            s.spawn(move || {
                for _ in 0..each {
                    accounts
                        .update_with("acc", |a: &mut Account| a.balance += 1)
                        .unwrap();
                }
            });
        }
    });
    let end = accounts.get_as::<Account>("acc").unwrap().unwrap();
    assert_eq!(end.value.balance, threads * each);
    assert_eq!(end.stamp.version, Version(1 + (threads * each) as u64));
    let missing = accounts
        .update_with("none", |a: &mut Account| a.balance += 1)
        .unwrap_err();
    assert!(
        matches!(missing, Error::DocumentMissing { .. }),
        "{missing}"
    );
}

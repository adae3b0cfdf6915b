use super::*;

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = connect_sqlite(&dir.path().join("k.db")).await.unwrap();
    (dir, store)
}

fn key(name: &str) -> KeyRow {
    KeyRow {
        id: new_id("key"),
        name: name.into(),
        kind: "api-key".into(),
        secret_sealed: vec![1, 2, 3],
        secret_hint: "sk-ant-api…abcd".into(),
        priority: 0,
        weight: 1,
        max_concurrent: Some(4),
        group_label: Some("org-a".into()),
        enabled: true,
        source: "cli".into(),
        created_at: 1,
        rps: None,
        daily_requests: None,
        daily_tokens: None,
        credits_expire_at: None,
        refresh_sealed: None,
        token_expires_at: None,
    }
}

#[tokio::test]
async fn caps_credit_expiry_and_the_oauth_grant_are_stored() {
    let (_dir, store) = store().await;
    let mut a = key("a");
    a.rps = Some(3);
    a.daily_requests = Some(100);
    a.daily_tokens = Some(5_000);
    a.credits_expire_at = Some(42);
    a.refresh_sealed = Some(vec![9, 9]);
    a.token_expires_at = Some(7);
    store.insert_key(&a).await.unwrap();
    assert_eq!(store.keys().await.unwrap(), vec![a.clone()]);
    a.rps = None;
    a.refresh_sealed = Some(vec![8]);
    a.token_expires_at = Some(8);
    store.update_key(&a).await.unwrap();
    assert_eq!(store.keys().await.unwrap(), vec![a.clone()]);
    a.daily_tokens = None;
    store.upsert_key(&a).await.unwrap();
    assert_eq!(store.keys().await.unwrap(), vec![a]);
}

#[tokio::test]
async fn keys_insert_upsert_delete() {
    let (_dir, store) = store().await;
    let a = key("a");
    store.insert_key(&a).await.unwrap();
    assert!(matches!(
        store.insert_key(&key("a")).await,
        Err(Error::Duplicate { .. })
    ));
    let mut changed = key("a");
    changed.weight = 5;
    let stored = store.upsert_key(&changed).await.unwrap();
    assert_eq!(stored.id, a.id, "upsert keeps the id of the existing name");
    assert_eq!(store.keys().await.unwrap()[0].weight, 5);
    let disabled = store.set_key_enabled("a", false).await.unwrap();
    assert!(!disabled.enabled);
    store.delete_key("a").await.unwrap();
    assert!(store.keys().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_key("a").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn state_and_transitions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let k = key("a");
    {
        let store = connect_sqlite(&path).await.unwrap();
        store.insert_key(&k).await.unwrap();
        let state = KeyStateRow {
            key_id: k.id.clone(),
            state: "cooling_down".into(),
            reason: Some("rate limited".into()),
            until: Some(99),
            rate_strikes: 2,
            billing_strikes: 0,
            updated_at: 5,
        };
        let transition = TransitionRow {
            key_id: k.id.clone(),
            at: 5,
            from_state: "active".into(),
            to_state: "cooling_down".into(),
            reason: "rate limited".into(),
            until: Some(99),
        };
        store.record_transition(&state, &transition).await.unwrap();
    }
    let store = connect_sqlite(&path).await.unwrap();
    let states = store.key_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].until, Some(99));
    assert_eq!(states[0].rate_strikes, 2);
    let transitions = store.transitions(&k.id, 10).await.unwrap();
    assert_eq!(transitions[0].to_state, "cooling_down");
}

#[tokio::test]
async fn transition_for_a_removed_key_is_dropped() {
    let (_dir, store) = store().await;
    let state = KeyStateRow {
        key_id: "gone".into(),
        state: "active".into(),
        reason: None,
        until: None,
        rate_strikes: 0,
        billing_strikes: 0,
        updated_at: 1,
    };
    let transition = TransitionRow {
        key_id: "gone".into(),
        at: 1,
        from_state: "a".into(),
        to_state: "b".into(),
        reason: "r".into(),
        until: None,
    };
    store.record_transition(&state, &transition).await.unwrap();
    assert!(store.key_states().await.unwrap().is_empty());
}

#[tokio::test]
async fn clients_and_batches() {
    let (_dir, store) = store().await;
    let client = ClientRow {
        id: new_id("cl"),
        name: "team".into(),
        key_digest: "d1".into(),
        key_hint: "klk_ab…".into(),
        created_at: 1,
        revoked_at: None,
        notes: None,
    };
    store.insert_client(&client).await.unwrap();
    assert!(matches!(
        store.insert_client(&client).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(
        store.client_by_digest("d1").await.unwrap().unwrap().name,
        "team"
    );
    assert!(store.client_by_digest("nope").await.unwrap().is_none());
    let revoked = store.revoke_client("team", 7).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(7));

    let batch = BatchRow {
        id: "msgbatch_1".into(),
        key_id: "key_1".into(),
        client_id: Some(client.id.clone()),
        created_at: 3,
    };
    store.insert_batch(&batch).await.unwrap();
    assert_eq!(store.batch("msgbatch_1").await.unwrap(), Some(batch));
    store.delete_batch("msgbatch_1").await.unwrap();
    assert!(store.batch("msgbatch_1").await.unwrap().is_none());
}

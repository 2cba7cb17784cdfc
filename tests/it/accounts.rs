//! Accounts in the store on each backend: logins expire, logouts and removed users end
//! tokens, a password change ends logins, API tokens are replaced, nothing but hashes stored.

use std::time::Duration;

use reportd::accounts::{AccountError, Accounts};
use reportd::model::role::Role;
use reportd::store::Store;
use reportd::store::sessions::SessionKind;

use crate::helpers::{Backend, ScratchStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_expire_and_end_with_their_user() {
    for backend in [Backend::Sqlite, Backend::Mysql, Backend::Postgres] {
        let db = ScratchStore::new(backend);
        let store = Store::connect(&db.settings()).await.unwrap();
        let accounts = Accounts::new(store.clone(), Duration::from_secs(3600));
        accounts
            .add_user("ann", Role::Editor, "pass-word-1")
            .await
            .unwrap();
        assert!(matches!(
            accounts.add_user("ann", Role::Viewer, "pass-word-1").await,
            Err(AccountError::Store(_))
        ));
        assert!(matches!(
            accounts.login("ann", "wrong-pass", "10.0.0.1").await,
            Err(AccountError::WrongLogin)
        ));
        let login = accounts
            .login("ann", "pass-word-1", "10.0.0.1")
            .await
            .unwrap();
        let caller = accounts.authenticate(&login.token).await.unwrap().unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("ann", Role::Editor));

        // An expired login is not accepted, and is pruned.
        let user = store.user("ann").await.unwrap().unwrap();
        let past = reportd::store::now() - chrono::Duration::seconds(1);
        store
            .add_session("deadbeef", user.id, SessionKind::Login, "x", Some(past))
            .await
            .unwrap();
        assert!(store.session("deadbeef").await.unwrap().is_none());
        assert!(store.prune_sessions().await.unwrap() >= 1);

        // Roles are read at each request, not frozen at login.
        store.set_user_role("ann", Role::Viewer).await.unwrap();
        let caller = accounts.authenticate(&login.token).await.unwrap().unwrap();
        assert_eq!(caller.role, Role::Viewer);

        // A new password ends the logins made with the old one.
        accounts.set_password("ann", "pass-word-2").await.unwrap();
        assert!(accounts.authenticate(&login.token).await.unwrap().is_none());

        // API tokens: one per user, replaced by the next; gone with the user.
        let t1 = accounts.new_api_token("ann").await.unwrap();
        let t2 = accounts.new_api_token("ann").await.unwrap();
        assert!(accounts.authenticate(&t1).await.unwrap().is_none());
        assert!(accounts.authenticate(&t2).await.unwrap().is_some());
        assert!(store.remove_user("ann").await.unwrap());
        assert!(accounts.authenticate(&t2).await.unwrap().is_none());
        assert_eq!(store.user_count().await.unwrap(), 0);
        assert!(matches!(
            accounts.new_api_token("ann").await,
            Err(AccountError::NoSuchUser(_))
        ));
    }
}

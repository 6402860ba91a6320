//! Private instances of the lab's vCenter simulator (`scripts/lab-vcsim` builds it and names
//! it in `GLINT_TEST_VCSIM_*`), for tests that need a server of their own: a short session
//! lifetime, chosen free space, or a server that stops and starts again on the same port and
//! datastores. Each has its own port and datastore folder, removed when it is dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A lab variable (`GLINT_TEST_<name>`); panics, naming the lab, when it is not set.
pub fn var(name: &str) -> String {
    std::env::var(format!("GLINT_TEST_{name}")).unwrap_or_else(|_| {
        panic!("GLINT_TEST_{name} is not set: start scripts/lab-vcsim and eval its env")
    })
}

pub struct Simulator {
    child: Option<Child>,
    host: String,
    dir: PathBuf,
    args: Vec<String>,
}

impl Simulator {
    /// Starts one on a free port, with the simulator's extra `args` (`-idle 1s`, `-free …`).
    pub async fn start(args: &[&str]) -> Simulator {
        let dir =
            std::env::temp_dir().join(format!("glint-vcsim-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder for the datastores");
        let mut simulator = Simulator {
            child: None,
            host: "127.0.0.1:0".to_owned(),
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        simulator.run().await;
        simulator
    }

    /// `host:port` it serves on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The folder holding one folder per datastore.
    pub fn datastores(&self) -> &Path {
        &self.dir
    }

    /// Starts it again after `stop`: same port, same datastores, new sessions.
    pub async fn run(&mut self) {
        let mut child = Command::new(var("VCSIM_BIN"))
            .args(["-listen", &self.host])
            .args([
                "-user",
                &var("VMWARE_USER"),
                "-pass",
                &var("VMWARE_PASSWORD"),
            ])
            .args(["-cert", &var("VCSIM_CERT"), "-key", &var("VCSIM_KEY")])
            .arg("-dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the simulator starts");
        let stdout = child.stdout.take().expect("its output");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("the simulator prints its URL")
        .expect("its output reads")
        .expect("a line");
        // https://user:pass@127.0.0.1:PORT/sdk
        let authority = line.rsplit_once('@').map_or(line.as_str(), |(_, a)| a);
        let authority = authority.trim_start_matches("https://");
        self.host = authority.trim_end_matches("/sdk").to_owned();
        self.child = Some(child);
    }

    /// Stops it (the datastores stay).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

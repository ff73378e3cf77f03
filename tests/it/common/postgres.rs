//! A real PostgreSQL for the shared-store tests: a cluster of its own (`initdb`) in a temp
//! directory, on a loopback port of the test port block, stopped and started again at will
//! (outage tests) and removed when dropped. PostgreSQL refuses to run as root: as root it
//! runs as the `postgres` user. Needs Debian's `postgresql` package (tests/run.sh installs
//! it).

use super::{ports, temp_dir};
use std::path::PathBuf;
use std::process::{Command, Output};
use tokio_postgres::NoTls;

pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Runs the server as this user (the tests run as root).
    user: Option<&'static str>,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn binaries() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).expect(
        "PostgreSQL is missing (no /usr/lib/postgresql/*/bin/pg_ctl): install the Debian \
         package `postgresql` (tests/run.sh does it)",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// A new cluster, started; the database `sas`, user `sas`, no password (trust).
    pub fn start() -> Self {
        let bin = binaries();
        let dir = temp_dir("pg");
        let user = is_root().then_some("postgres");
        if let Some(user) = user {
            let owner = format!("{user}:");
            let chown = Command::new("chown")
                .arg("-R")
                .arg(owner)
                .arg(&dir)
                .status();
            assert!(chown.unwrap().success(), "chown of {}", dir.display());
        }
        let pg = Self {
            bin,
            port: ports::media_port(),
            dir,
            user,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "sas",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        pg.restart();
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "sas",
                "sas",
            ],
        );
        pg
    }

    /// The URL for `[shared_store] url`.
    pub fn url(&self) -> String {
        format!("postgres://sas@127.0.0.1:{}/sas", self.port)
    }

    /// `[shared_store]` for a router's config, with a short retry wait, and `[node]`.
    pub fn config(&self, node: &str) -> String {
        format!(
            "[node]\nname = \"{node}\"\n[shared_store]\nurl = \"{}\"\nretry_max_s = 1\ntimeout_s = 5\n",
            self.url()
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts it (again), and waits until it accepts connections.
    pub fn restart(&self) {
        let (data, log) = (self.data(), self.dir.join("postgres.log"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
             -c shared_buffers=16MB -c max_connections=30",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Runs a PostgreSQL program (as the server's user); panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
        );
        out
    }

    /// A PostgreSQL program, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        // pg_ctl's server inherits the working directory: one the server's user can read.
        command.current_dir(&self.dir);
        command
    }

    /// A client of the test's database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// The one bigint an SQL query returns (`SELECT count(*) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Waits (up to 30 s) until `sql` counts `n` (the tables may not be there yet: the
    /// router creates them when it connects).
    pub async fn wait_count(&self, sql: &str, n: i64) {
        for _ in 0..300 {
            let count = self.client().await.query_one(sql, &[]).await;
            if count.is_ok_and(|row| row.get::<_, i64>(0) == n) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{sql} is {}, not {n}", self.count(sql).await);
    }
}

impl Drop for Postgres {
    /// No server outlives its test.
    fn drop(&mut self) {
        let data = self.data();
        let args = ["-D", data.to_str().unwrap(), "-m", "immediate", "stop"];
        let _ = self.command("pg_ctl").args(args).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

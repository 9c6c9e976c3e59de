//! `kst sync` and `kst lock`: config → plan → fetch → materialise → record.
//!
//! Each stage is a function of the previous one's value; nothing is written before the plan
//! exists, and the lock is written last.

use std::time::Instant;

use anyhow::anyhow;

use crate::config::{self, Config};
use crate::error::{Error, Outcome, Result};
use crate::git::{Cache, FetchMode};
use crate::install;
use crate::lock::Lock;
use crate::plan::{self, Action, Plan};
use crate::report::{self, Printer, Summary};
use crate::resolve::{self, FailedSource, Origin, ResolvedSource};
use crate::scope::ScopeCtx;
use crate::source::Source;

/// Options shared by commands that read the config.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub config: Option<String>,
    pub scope: Option<config::Scope>,
    pub dry_run: bool,
    pub offline: bool,
    /// kst may ask on the terminal (for trust, SPEC 3).
    pub interactive: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `--update`: None = no; Some(empty) = all; Some(names) = sources providing these skills.
    pub update: Option<Vec<String>>,
    pub locked: bool,
    pub force: bool,
    /// MCP servers whose `${kst_NAME}` secrets are unset are skipped instead of failing.
    pub allow_missing_secrets: bool,
}

/// Everything a run needs, loaded once.
pub struct Context {
    pub config: Config,
    pub scope: ScopeCtx,
    pub old_lock: Lock,
}

impl Context {
    /// Resolve every source and plan the skills. A source taken from the lock whose skills
    /// could not be read when they had to be written (a damaged cache repository) is resolved
    /// once more in full — which moves a damaged repository aside and fetches again — and the
    /// plan is made again.
    pub fn resolve_and_plan(
        &self,
        opts: &SyncOptions,
        offline: bool,
        printer: &Printer,
        force: bool,
    ) -> Result<(Vec<ResolvedSource>, Vec<FailedSource>, Plan)> {
        let (mut resolved, mut failed) = resolve_all(self, opts, offline, printer)?;
        let plan = self.plan_skills(&resolved, &failed, force);
        if plan.reread.is_empty() {
            return Ok((resolved, failed, plan));
        }
        let mode = if offline {
            FetchMode::Offline
        } else {
            FetchMode::Online
        };
        let cache = Cache::open().map_err(Error::Failed)?;
        let mut again = Vec::new();
        for (i, r) in resolved.drain(..).enumerate() {
            let Source::Git(url) = &r.entry.source else {
                again.push(Ok(r));
                continue;
            };
            if !plan.reread.contains(&i) {
                again.push(Ok(r));
                continue;
            }
            let locked = plan::find_locked(&self.old_lock, &r.entry);
            let update = wants_update(opts, locked);
            again.push(resolve::git(
                &r.entry,
                url,
                locked,
                update,
                true,
                &cache,
                mode,
                &mut |_, _, _| {},
            ));
        }
        for r in again {
            match r {
                Ok(r) => resolved.push(r),
                Err(f) => failed.push(f),
            }
        }
        let plan = self.plan_skills(&resolved, &failed, force);
        Ok((resolved, failed, plan))
    }

    /// The skills plan for resolved sources against this scope's lock and folders.
    pub fn plan_skills(
        &self,
        resolved: &[ResolvedSource],
        failed: &[FailedSource],
        force: bool,
    ) -> Plan {
        plan::build(&plan::Inputs {
            resolved,
            failed,
            old: &self.old_lock,
            folders: &self.scope.folders,
            scope_root: &self.scope.root,
            manageable: &self.scope.manageable,
            force,
        })
    }
}

/// Find and load the config, decide the scope, read its lock. A working-directory config must
/// be trusted before it is even loaded when the command would write to, or fetch for, the
/// global scope ([`crate::trust::gate`]).
/// One fetched source: its canonical URL, and whether it was downloaded (with the commit) or why not.
type FetchOutcome = (String, std::result::Result<(bool, String), String>);

pub fn load(common: &Common, access: crate::trust::Access) -> Result<Context> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current folder: {e}")))?;
    let (path, origin) = config::discover(common.config.as_deref(), &cwd)?;
    crate::trust::gate(
        &path,
        origin,
        &crate::trust::Run {
            access,
            scope_flag: common.scope,
            offline: common.offline,
            interactive: common.interactive,
        },
    )?;
    let config = config::load_for(&path, common.offline, common.scope)?;
    let scope = ScopeCtx::new(&config, common.scope)?;
    // In the project scope the lock is the project's: one leaving it (a symlink) is refused.
    let within = (scope.scope == config::Scope::Project).then_some(scope.root.as_path());
    let old_lock = Lock::read_within(&scope.lock_path, within)?;
    Ok(Context {
        config,
        scope,
        old_lock,
    })
}

/// Resolve every source of the config; failures are collected, not fatal. Git sources are
/// fetched concurrently, each on its own thread with its own repository handle.
pub fn resolve_all(
    ctx: &Context,
    opts: &SyncOptions,
    offline: bool,
    printer: &Printer,
) -> Result<(Vec<ResolvedSource>, Vec<FailedSource>)> {
    let mode = if offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let needs_cache = ctx
        .config
        .skills
        .iter()
        .any(|e| matches!(e.source, Source::Git(_)));
    let cache = if needs_cache {
        Some(Cache::open().map_err(Error::Failed)?)
    } else {
        None
    };
    let bars = printer.progress().then(indicatif::MultiProgress::new);
    let results: Vec<Result<ResolvedSource, FailedSource>> = std::thread::scope(|s| {
        let handles: Vec<_> = ctx
            .config
            .skills
            .iter()
            .map(|entry| {
                let locked = plan::find_locked(&ctx.old_lock, entry);
                let update = wants_update(opts, locked);
                let cache = cache.as_ref();
                let bars = bars.as_ref();
                s.spawn(move || match &entry.source {
                    Source::Local { .. } => resolve::local(entry, locked, update),
                    Source::Git(url) => {
                        let bar = bars.map(|m| progress_bar(m, url.canonical().as_str()));
                        let mut tick = |got: usize, total: usize, bytes: usize| {
                            if let Some(b) = &bar {
                                b.set_length(total as u64);
                                b.set_position(got as u64);
                                b.set_message(crate::report::clean(&format!(
                                    "{} ({} KiB)",
                                    url.canonical(),
                                    bytes / 1024
                                )));
                            }
                        };
                        let r = resolve::git(
                            entry,
                            url,
                            locked,
                            update,
                            false,
                            cache.expect("cache opened for git sources"),
                            mode,
                            &mut tick,
                        );
                        if let Some(b) = bar {
                            b.finish_and_clear();
                        }
                        r
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a resolver thread panicked"))
            .collect()
    });
    let mut resolved = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(r) => resolved.push(r),
            Err(f) => failed.push(f),
        }
    }
    Ok((resolved, failed))
}

fn progress_bar(m: &indicatif::MultiProgress, url: &str) -> indicatif::ProgressBar {
    let bar = m.add(indicatif::ProgressBar::new(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} objects")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(crate::report::clean(url));
    bar
}

/// Does `--update` apply to this source? All sources for a bare `--update`; with names, the
/// sources whose lock entry provides one of them.
fn wants_update(opts: &SyncOptions, locked: Option<&crate::lock::LockedSource>) -> bool {
    match &opts.update {
        None => false,
        Some(names) if names.is_empty() => true,
        Some(names) => locked.is_some_and(|l| l.skills.iter().any(|s| names.contains(&s.name))),
    }
}

pub fn sync(common: &Common, opts: &SyncOptions, printer: &Printer) -> Result<()> {
    let started = Instant::now();
    let ctx = load(common, crate::trust::Access::Writes)?;
    let _guard = ctx.scope.exclusive(|msg| printer.line(msg))?;
    if opts.locked {
        // Entries the lock does not know would have to be resolved: that is drift, found
        // before any network use.
        let mut missing: Vec<String> = ctx
            .config
            .skills
            .iter()
            .filter(|e| plan::find_locked(&ctx.old_lock, e).is_none())
            .map(|e| {
                format!(
                    "{}: {} ({}) is not in the lock",
                    e.at,
                    e.source.identity(),
                    e.requested()
                )
            })
            .collect();
        missing.extend(mcp_unlocked(&ctx));
        if !missing.is_empty() {
            return Err(locked_error(&ctx, &missing));
        }
    }
    let (resolved, failed, mut plan) =
        ctx.resolve_and_plan(opts, common.offline, printer, opts.force)?;
    let mut mcp_plan = plan_mcp(
        &ctx,
        &opts.update,
        common.offline,
        if opts.allow_missing_secrets {
            crate::mcp::SecretPolicy::AllowMissing
        } else {
            crate::mcp::SecretPolicy::Require
        },
    )?;
    plan.lock.mcps = mcp_plan.lock.clone();

    if opts.locked {
        let drift = ctx.old_lock.drift(&plan.lock);
        if !drift.is_empty() {
            // A skill that cannot be installed (a conflict at its destination, say) also
            // changes the lock; say why first, so the diagnosis is not "the lock is stale".
            let mut why: Vec<String> = plan
                .items
                .iter()
                .filter(|i| i.action() == Action::Broken)
                .filter_map(|i| {
                    i.error
                        .clone()
                        .or_else(|| i.dests.iter().find_map(|d| d.error.clone()))
                })
                .collect();
            why.extend(drift);
            return Err(locked_error(&ctx, &why));
        }
    }

    for f in &failed {
        printer.error(&f.error);
    }
    for r in &resolved {
        for w in &r.warnings {
            printer.warn(&format!("{}: {w}", r.url));
        }
    }
    for f in &mcp_plan.failed {
        printer.error(&f.error);
    }
    for r in &mcp_plan.resolved {
        for w in &r.selected.warnings {
            printer.warn(&format!("{}: {w}", r.url));
        }
    }

    if !common.dry_run {
        apply(&mut plan, &resolved, &ctx.scope, &ctx.old_lock);
        crate::mcp::apply::apply(&mut mcp_plan);
        plan.lock.mcps = mcp_plan.lock.clone();
    }
    // Equal values serialise equally: the (costly) text comparison is for an old lock that
    // parsed differently but reads the same, e.g. one not in normal order.
    let lock_changed = (plan.lock != ctx.old_lock && plan.lock.to_yaml() != ctx.old_lock.to_yaml())
        || !ctx.scope.lock_path.exists();
    if !common.dry_run
        && lock_changed
        && !(plan.lock.sources.is_empty()
            && plan.lock.mcps.is_empty()
            && !ctx.scope.lock_path.exists())
    {
        crate::failpoint::hit("sync-before-lock");
        plan.lock.write(&ctx.scope.lock_path)?;
    }

    let server_items = mcp_plan.report_items();
    let all_items: Vec<plan::Item> = plan.items.iter().chain(&server_items).cloned().collect();
    let summary = Summary::of(
        &all_items,
        failed.len() + mcp_plan.failed.len(),
        started.elapsed(),
    );
    if printer.json {
        printer.json(&report::JsonSync {
            schema: 1,
            command: "sync",
            dry_run: common.dry_run,
            scope: ctx.scope.name(),
            // A remote config's URL as spelled may carry a query (`?private_token=…`).
            config: crate::source::DisplayUrl::new(&ctx.config.label).to_string(),
            lock: ctx.scope.lock_path.display().to_string(),
            lock_changed,
            sources: report::json_sources(&resolved, &failed)
                .into_iter()
                .chain(report::mcp_json_sources(&mcp_plan))
                .collect(),
            items: report::json_items(&plan)
                .into_iter()
                .chain(report::mcp_json_items(&mcp_plan))
                .collect(),
            summary,
        });
    } else {
        report::print_items(printer, &plan.items);
        report::print_items(printer, &server_items);
        printer.line(&summary.human(common.dry_run));
    }
    if summary.ok() {
        Ok(())
    } else {
        Err(Error::Reported(Outcome::Problems))
    }
}

fn locked_error(ctx: &Context, drift: &[String]) -> Error {
    Error::Failed(anyhow!(
        "--locked: the lock {} is out of date:\n  {}\nrun `kst sync` (or `kst lock`) and commit the updated lock",
        ctx.scope.lock_path.display(),
        drift.join("\n  ")
    ))
}

/// Carry out the plan: install, repair, remove. Failures become item errors and the lock is
/// adjusted so it never claims a folder that is not ours.
fn apply(plan: &mut Plan, resolved: &[ResolvedSource], scope: &ScopeCtx, old: &Lock) {
    // Every skills folder this run may write or delete in: leftovers of an interrupted run
    // (staging folders, trash) are removed first, and empty work folders at the end.
    let mut touched: Vec<&std::path::Path> = scope.folders.iter().map(|f| f.as_path()).collect();
    touched.extend(
        plan.items
            .iter()
            .flat_map(|item| item.dests.iter())
            .filter_map(|d| d.target.abs.parent()),
    );
    touched.sort();
    touched.dedup();
    let touched: Vec<std::path::PathBuf> = touched
        .into_iter()
        .filter(|folder| scope.symlinked_parent(&folder.join("-")).is_none())
        .map(std::path::Path::to_path_buf)
        .collect();
    for folder in &touched {
        install::clean_work_dirs(folder, &scope.root);
    }
    // Every install first, on all cores (install::install_all); their results are taken below.
    let writes: Vec<(usize, usize)> = plan
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.origin.is_some())
        .flat_map(|(ii, item)| {
            item.dests.iter().enumerate().filter_map(move |(di, d)| {
                (d.action.writes() && scope.symlinked_parent(&d.target.abs).is_none())
                    .then_some((ii, di))
            })
        })
        .collect();
    let jobs: Vec<install::Job> = writes
        .iter()
        .map(|&(ii, di)| {
            let item = &plan.items[ii];
            let (si, ki) = item.origin.expect("filtered above");
            install::Job {
                // Every skill with a write was listed by the plan (else it is broken).
                tree: resolved[si].skills[ki]
                    .listing()
                    .expect("a skill to install was listed in the plan"),
                target: &item.dests[di].target.abs,
                root: &scope.root,
                db: match &resolved[si].origin {
                    Origin::Git { db, .. } => Some(db.as_path()),
                    Origin::Local(_) => None,
                },
            }
        })
        .collect();
    let mut installed: std::collections::HashMap<(usize, usize), anyhow::Result<Vec<String>>> =
        writes
            .into_iter()
            .zip(install::install_all(&jobs))
            .collect();
    drop(jobs);

    // Paths whose step failed: a new install that did not happen is not ours; a removal that
    // did not happen leaves a folder that is still ours and must stay in the lock.
    let mut failed_adds: Vec<String> = Vec::new();
    let mut failed_removals: Vec<String> = Vec::new();
    for (ii, item) in plan.items.iter_mut().enumerate() {
        for (di, d) in item.dests.iter_mut().enumerate() {
            let result = match (d.action, item.origin) {
                (a, _)
                    if (a.writes() || a == Action::Removed)
                        && let Some(link) = scope.symlinked_parent(&d.target.abs) =>
                {
                    Err(anyhow!(
                        "{} is a symlink; inside a project kst never writes or deletes through a symlink \
                     (a cloned project could point it anywhere); replace it with a real folder",
                        link.display()
                    ))
                }
                (a, Some(_)) if a.writes() => installed
                    .remove(&(ii, di))
                    .expect("installed above")
                    .map(|w| item.warnings.extend(w)),
                (Action::Removed, _) => crate::failpoint::fail("remove")
                    .and_then(|()| install::remove(&d.target.abs, &scope.root)),
                _ => Ok(()),
            };
            if let Err(e) = result {
                d.error = Some(format!("{}: {e:#}", d.target.abs.display()));
                match d.action {
                    Action::Added if old.skill_installed_at(&d.target.rel).is_none() => {
                        failed_adds.push(d.target.rel.clone())
                    }
                    Action::Removed => failed_removals.push(d.target.rel.clone()),
                    _ => {}
                }
            }
        }
    }
    for s in &mut plan.lock.sources {
        for k in &mut s.skills {
            k.installed.retain(|p| !failed_adds.contains(p));
        }
    }
    for rel in &failed_removals {
        let Some((src, skill)) = old.skill_installed_at(rel) else {
            continue;
        };
        let kept = crate::lock::LockedSkill {
            installed: vec![rel.clone()],
            ..skill.clone()
        };
        let same = |l: &crate::lock::LockedSource| {
            l.url == src.url
                && l.requested == src.requested
                && l.sub_dir == src.sub_dir
                && l.commit == src.commit
        };
        match plan.lock.sources.iter_mut().find(|l| same(l)) {
            Some(l) => match l
                .skills
                .iter_mut()
                .find(|k| k.name == skill.name && k.tree == skill.tree)
            {
                Some(k) => k.installed.push(rel.clone()),
                None => l.skills.push(kept),
            },
            None => plan.lock.sources.push(crate::lock::LockedSource {
                skills: vec![kept],
                ..src.clone()
            }),
        }
    }
    plan.lock.normalise();
    for folder in &touched {
        install::drop_work_dir(folder, &scope.root);
    }
}

/// `kst lock [--check]`: resolve every source and write the lock, installing nothing.
/// `--check` writes nothing and exits 1 when the lock would change.
pub fn lock(common: &Common, opts: &SyncOptions, check: bool, printer: &Printer) -> Result<()> {
    let ctx = load(common, crate::trust::Access::Writes)?;
    let _guard = ctx.scope.exclusive(|msg| printer.line(msg))?;
    let (resolved, failed, mut plan) =
        ctx.resolve_and_plan(opts, common.offline, printer, false)?;
    // Secrets are not needed to lock: the lock holds the placeholder form.
    let mcp_plan = plan_mcp(
        &ctx,
        &opts.update,
        common.offline,
        crate::mcp::SecretPolicy::Ignore,
    )?;
    plan.lock.mcps = mcp_plan.lock.clone();
    for f in &failed {
        printer.error(&f.error);
    }
    for f in &mcp_plan.failed {
        printer.error(&f.error);
    }
    let drift = ctx.old_lock.drift(&plan.lock);
    // Skills that cannot be installed here (a folder kst did not install is in the way) are
    // left out of the lock: say so, or machines would silently disagree about the lock.
    let broken: Vec<plan::Item> = plan
        .items
        .iter()
        .filter(|i| i.action() == Action::Broken)
        .cloned()
        .collect();
    if !printer.json {
        report::print_items(printer, &broken);
    }
    let write = !check && !common.dry_run && !drift.is_empty();
    if write {
        plan.lock.write(&ctx.scope.lock_path)?;
    }
    if printer.json {
        printer.json(&serde_json::json!({
            "schema": 1,
            "command": "lock",
            "check": check,
            "dry_run": common.dry_run,
            "lock": ctx.scope.lock_path.display().to_string(),
            "changes": drift,
            "broken": broken.iter().map(|i| serde_json::json!({
                "name": i.name,
                "source": i.source,
                "error": i.error.clone().or_else(|| i.dests.iter().find_map(|d| d.error.clone())),
            })).collect::<Vec<_>>(),
            "written": write,
            "sources": report::json_sources(&resolved, &failed)
                .into_iter()
                .chain(report::mcp_json_sources(&mcp_plan))
                .collect::<Vec<_>>(),
        }));
    } else if drift.is_empty() {
        printer.line(&format!("{} is up to date", ctx.scope.lock_path.display()));
    } else {
        let verb = if write { "updated" } else { "would change" };
        printer.line(&format!("{} {verb}:", ctx.scope.lock_path.display()));
        for d in &drift {
            printer.line(&format!("  {d}"));
        }
    }
    if check && !drift.is_empty() && !printer.json {
        printer.error("the lock is out of date; run `kst lock` and commit the result");
    }
    if !failed.is_empty()
        || !mcp_plan.failed.is_empty()
        || !broken.is_empty()
        || (check && !drift.is_empty())
    {
        return Err(Error::Reported(Outcome::Problems));
    }
    Ok(())
}

/// `kst fetch`: put every locked commit into the cache; install nothing.
pub fn fetch(common: &Common, printer: &Printer) -> Result<()> {
    let ctx = load(common, crate::trust::Access::Writes)?;
    let mode = if common.offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let cache = Cache::open().map_err(Error::Failed)?;
    // Locked git entries; the config supplies the URL to fetch from (it may carry an ssh user).
    let jobs: Vec<_> = ctx
        .config
        .skills
        .iter()
        .filter_map(|e| match &e.source {
            Source::Git(url) => Some((e, url, plan::find_locked(&ctx.old_lock, e))),
            Source::Local { .. } => None,
        })
        .collect();
    let results: Vec<std::result::Result<(bool, String), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(entry, url, locked)| {
                let cache = &cache;
                s.spawn(move || {
                    let Some(l) = locked else {
                        return Err(format!(
                            "{}: {} is not in the lock; run `kst lock` first",
                            entry.at,
                            url.canonical()
                        ));
                    };
                    let commit = l
                        .commit
                        .as_deref()
                        .and_then(|c| git2::Oid::from_str(c).ok())
                        .ok_or_else(|| {
                            format!(
                                "{}: the lock has no valid commit for {}",
                                entry.at,
                                url.canonical()
                            )
                        })?;
                    let db = cache.database(url.canonical());
                    let _held = db.lock().map_err(|e| format!("{e:#}"))?;
                    let repo = db.open_or_init().map_err(|e| format!("{e:#}"))?;
                    let want = crate::git::Want::Locked {
                        commit,
                        requested: l.requested.clone(),
                    };
                    let r = crate::git::resolve(&repo, url, &want, mode, &mut |_, _, _| {})
                        .map_err(|e| format!("{}: {}: {e:#}", entry.at, url.canonical()))?;
                    Ok((r.fetched, commit.to_string()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a fetch thread panicked"))
            .collect()
    });
    let mut problems = 0;
    let mut rows = Vec::new();
    let mut outcomes: Vec<FetchOutcome> = jobs
        .iter()
        .zip(results)
        .map(|(&(_, url, _), r)| (url.canonical().to_string(), r))
        .collect();
    outcomes.extend(crate::mcp::resolve::fetch_locked(
        &ctx.config.mcps,
        &ctx.old_lock,
        &cache,
        mode,
    ));
    let total = outcomes.len();
    for (url, r) in outcomes {
        match r {
            Ok((fetched, commit)) => {
                let state = if fetched { "fetched" } else { "cached" };
                printer.line(&format!(
                    "{} {}@{} ({state})",
                    if fetched { "+" } else { "=" },
                    url,
                    &commit[..7]
                ));
                rows.push(serde_json::json!({"url": url, "commit": commit, "fetch": state}));
            }
            Err(e) => {
                problems += 1;
                printer.error(&e);
                rows.push(serde_json::json!({"url": url, "error": e}));
            }
        }
    }
    if printer.json {
        printer.json(&serde_json::json!({"schema": 1, "command": "fetch", "sources": rows}));
    } else {
        printer.line(&format!(
            "{} of {} locked sources are in the cache {}",
            total - problems,
            total,
            cache.root().display()
        ));
    }
    if problems > 0 {
        Err(Error::Reported(Outcome::Problems))
    } else {
        Ok(())
    }
}

/// Resolve the config's `mcps:` and plan every settings file edit, writing nothing.
fn plan_mcp(
    ctx: &Context,
    update: &Option<Vec<String>>,
    offline: bool,
    secrets: crate::mcp::SecretPolicy,
) -> Result<crate::mcp::McpPlan> {
    if ctx.config.mcps.is_empty() && ctx.old_lock.mcps.is_empty() {
        return Ok(crate::mcp::McpPlan::default());
    }
    let resolved =
        crate::mcp::resolve::resolve_all(&ctx.config.mcps, &ctx.old_lock, update, offline);
    let home = crate::dirs::home()?;
    let cache_root = crate::git::Cache::open()
        .ok()
        .map(|c| c.root().to_path_buf());
    let resolver = secrets.resolver(&ctx.config.secrets);
    Ok(crate::mcp::plan::build(crate::mcp::plan::Inputs {
        resolved,
        old: &ctx.old_lock,
        agents: &ctx.config.agents,
        global: ctx.scope.scope == config::Scope::Global,
        home: &home,
        scope_root: &ctx.scope.root,
        secrets: &resolver,
        update,
        cache_root,
        confine: (ctx.scope.scope == config::Scope::Project)
            .then(|| crate::mcp::plan::real_path(&ctx.scope.root)),
    }))
}

/// `--locked`: config entries the lock does not know, as drift lines.
fn mcp_unlocked(ctx: &Context) -> Vec<String> {
    ctx.config
        .mcps
        .iter()
        .filter(|e| crate::mcp::resolve::find_locked(&ctx.old_lock, e).is_none())
        .map(|e| {
            format!(
                "{}: MCP {} ({}) is not in the lock",
                e.at,
                e.url(),
                crate::mcp::resolve::requested_of(e)
            )
        })
        .collect()
}

//! The pipeline one sync runs through, for every kind: resolve the sources (git, local
//! folder, inline) → plan what should be where → apply the plan → the new lock.
//!
//! Each stage is a function of the previous one's value; nothing is written before the plan
//! exists, and the lock is written last (by the command). The commands (`sync`, `lock`)
//! choose which stages run and what is printed; this module never prints a result.

use anyhow::anyhow;

use crate::config;
use crate::config::entry::ConfigEntry;
use crate::error::Result;
use crate::git::{Cache, FetchMode};
use crate::install;
use crate::item::Kind;
use crate::lock::{Lock, LockedEntry};
use crate::plan::{self, Action, Plan};
use crate::printer::Printer;
use crate::resolve::{self, FailedSource, Origin, ResolvedSource};
use crate::scope::ScopeCtx;
use crate::source::{GitUrl, Source};
use crate::workspace::Workspace;

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `--update`: None = no; Some(empty) = all; Some(names) = sources providing these skills.
    pub update: Option<Vec<String>>,
    pub locked: bool,
    pub force: bool,
    /// MCP servers whose `${kst_NAME}` secrets are unset are skipped instead of failing.
    pub allow_missing_secrets: bool,
    /// `--accept`: take pin moves that add capability (`audit.review-updates`).
    pub accept: bool,
}

/// Resolve every source and plan the skills. A source taken from the lock whose skills
/// could not be read when they had to be written (a damaged cache repository) is resolved
/// once more in full — which moves a damaged repository aside and fetches again — and the
/// plan is made again.
pub fn resolve_and_plan(
    ws: &Workspace,
    opts: &SyncOptions,
    offline: bool,
    printer: &Printer,
    force: bool,
) -> Result<(Vec<ResolvedSource>, Vec<FailedSource>, Plan)> {
    let (mut resolved, mut failed) = resolve_skills(ws, opts, offline, printer)?;
    crate::failpoint::hold("skills-resolved");
    let plan = plan_skills(ws, &resolved, &failed, force);
    if plan.reread.is_empty() {
        return Ok((resolved, failed, plan));
    }
    let mode = if offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let cache = ws.cache()?;
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
        let locked = plan::find_locked(&ws.old_lock, &r.entry);
        let update = wants_update(opts, locked);
        again.push(resolve::git(
            &r.entry,
            url,
            locked,
            update,
            true,
            cache,
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
    let plan = plan_skills(ws, &resolved, &failed, force);
    Ok((resolved, failed, plan))
}

/// The skills plan for resolved sources against this scope's lock and folders.
pub fn plan_skills(
    ws: &Workspace,
    resolved: &[ResolvedSource],
    failed: &[FailedSource],
    force: bool,
) -> Plan {
    plan::build(&plan::Inputs {
        resolved,
        failed,
        old: &ws.old_lock,
        folders: &ws.scope.folders,
        scope_root: &ws.scope.root,
        manageable: &ws.scope.manageable,
        force,
    })
}

/// Resolve every source of the config; failures are collected, not fatal. Git sources are
/// fetched concurrently, each on its own thread with its own repository handle.
pub fn resolve_skills(
    ctx: &Workspace,
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
        Some(ctx.cache()?)
    } else {
        None
    };
    let bars = printer.progress().then(indicatif::MultiProgress::new);
    crate::git::setup::before_workers(ctx.config.skills.iter().map(|e| &e.source));
    let results: Vec<Result<ResolvedSource, FailedSource>> =
        crate::threads::each(&ctx.config.skills, "a resolver", |entry| {
            let locked = plan::find_locked(&ctx.old_lock, entry);
            let update = wants_update(opts, locked);
            let bars = bars.as_ref();
            match &entry.source {
                Source::Local { .. } => resolve::local(
                    entry,
                    locked,
                    update,
                    ctx.reads_within.as_deref(),
                    printer.json,
                ),
                Source::Git(url) => {
                    let bar = bars.map(|m| progress_bar(m, url.canonical().as_str()));
                    let mut tick = |got: usize, total: usize, bytes: usize| {
                        if let Some(b) = &bar {
                            b.set_length(total as u64);
                            b.set_position(got as u64);
                            b.set_message(crate::printer::clean(&format!(
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
            }
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
    bar.set_message(crate::printer::clean(url));
    bar
}

/// Does `--update` apply to this source? All sources for a bare `--update`; with names, the
/// sources whose lock entry provides one of them.
fn wants_update(opts: &SyncOptions, locked: Option<&crate::lock::LockedSource>) -> bool {
    let skills = locked.into_iter().flat_map(|l| l.skills.iter());
    crate::lock::update_moves(&opts.update, skills.map(|s| s.name.as_str()))
}

/// Carry out the plan: install, repair, remove. Failures become item errors and the lock is
/// adjusted so it never claims a folder that is not ours.
pub fn apply_skills(plan: &mut Plan, resolved: &[ResolvedSource], scope: &ScopeCtx, old: &Lock) {
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
    // Whether a destination's folder is reached through a symlink depends on its parent only:
    // judged once per skills folder for the installs, not once per skill (twice, below).
    let mut linked: std::collections::HashMap<std::path::PathBuf, Option<std::path::PathBuf>> =
        std::collections::HashMap::new();
    for d in plan.items.iter().flat_map(|item| item.dests.iter()) {
        if d.action.writes()
            && let Some(parent) = d.target.abs.parent()
            && !linked.contains_key(parent)
        {
            linked.insert(parent.to_path_buf(), scope.symlinked_parent(&d.target.abs));
        }
    }
    let linked = linked;
    let link_above = |target: &std::path::Path| match target.parent().and_then(|p| linked.get(p)) {
        Some(known) => known.clone(),
        None => scope.symlinked_parent(target),
    };
    // Every install first, on all cores (install::install_all); their results are taken below.
    let writes: Vec<(usize, usize)> = plan
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.extra.is_some())
        .flat_map(|(ii, item)| {
            let link_above = &link_above;
            item.dests.iter().enumerate().filter_map(move |(di, d)| {
                (d.action.writes() && link_above(&d.target.abs).is_none()).then_some((ii, di))
            })
        })
        .collect();
    let jobs: Vec<install::Job> = writes
        .iter()
        .map(|&(ii, di)| {
            let item = &plan.items[ii];
            let (si, ki) = item.extra.expect("filtered above");
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
            // A removal is judged right before it happens (after the installs).
            let above = match d.action {
                a if a.writes() => link_above(&d.target.abs),
                Action::Removed => scope.symlinked_parent(&d.target.abs),
                _ => None,
            };
            let result = match (d.action, item.extra) {
                (a, _)
                    if (a.writes() || a == Action::Removed)
                        && let Some(link) = above =>
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

/// `--locked`: config entries (of every kind) the lock does not know, as drift lines.
pub fn unlocked(ws: &Workspace) -> Vec<String> {
    let (config, lock) = (&ws.config, &ws.old_lock);
    let mut missing = unlocked_in(Kind::Skill, &config.skills, &lock.sources);
    missing.extend(unlocked_in(Kind::Server, &config.mcps, &lock.mcps));
    missing.extend(unlocked_in(Kind::Command, &config.commands, &lock.commands));
    missing.extend(unlocked_in(
        Kind::Instruction,
        &config.instructions,
        &lock.instructions,
    ));
    missing
}

fn unlocked_in<E: ConfigEntry, L: LockedEntry>(
    kind: Kind,
    entries: &[E],
    section: &[L],
) -> Vec<String> {
    entries
        .iter()
        .map(|e| (e, e.id()))
        .filter(|(_, id)| crate::lock::find_entry(section, id).is_none())
        .map(|(e, id)| {
            format!(
                "{}: {}{} ({}) is not in the lock",
                e.at(),
                kind.source_prefix(),
                id.url,
                id.requested()
            )
        })
        .collect()
}

/// Resolve the config's `mcps:` and plan every settings file edit, writing nothing.
pub fn plan_mcp(
    ctx: &Workspace,
    update: &Option<Vec<String>>,
    offline: bool,
    secrets: crate::mcp::SecretPolicy,
) -> Result<crate::mcp::McpPlan> {
    if ctx.config.mcps.is_empty() && ctx.old_lock.mcps.is_empty() {
        return Ok(crate::mcp::McpPlan::default());
    }
    let resolved = crate::mcp::resolve::resolve_all(
        &ctx.config.mcps,
        &ctx.old_lock,
        update,
        offline,
        ctx.reads_within.as_deref(),
    );
    let home = crate::dirs::home()?;
    let cache_root = ctx.cache().ok().map(|c| c.root().to_path_buf());
    let resolver = secrets
        .resolver(&ctx.config.secrets)
        .refusing(ctx.secrets_refused.clone());
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

/// Resolve the config's `commands:` and `instructions:` and plan every write, writing nothing.
/// Returns the two plans, commands first.
pub fn plan_files(
    ws: &Workspace,
    update: &Option<Vec<String>>,
    offline: bool,
    force: bool,
) -> Result<Vec<crate::files::plan::FilePlan>> {
    let (config, old) = (&ws.config, &ws.old_lock);
    let kinds = [
        (Kind::Command, &config.commands, &old.commands),
        (Kind::Instruction, &config.instructions, &old.instructions),
    ];
    let needs_cache = kinds
        .iter()
        .any(|(_, entries, _)| entries.iter().any(|e| matches!(e.source, Source::Git(_))));
    let cache = if needs_cache { Some(ws.cache()?) } else { None };
    let home = crate::dirs::home()?;
    let global = ws.scope.scope == config::Scope::Global;
    let mode = if offline {
        FetchMode::Offline
    } else {
        FetchMode::Online
    };
    let mut plans = Vec::new();
    for (kind, entries, section) in kinds {
        if entries.is_empty() && section.is_empty() {
            if let Some(k) = &ws.kasetto {
                // Nothing configured reads their sources: Kasetto's files are reported.
                k.take_files(kind, &[], section, config, &ws.scope);
            }
            plans.push(crate::files::plan::FilePlan::default());
            continue;
        }
        let places = crate::files::Places {
            agents: &config.agents,
            global,
            home: &home,
            root: &ws.scope.root,
        };
        let confine = (!global).then(|| crate::shared_file::real_path(&ws.scope.root));
        // The warm no-op's fast path (files/fast.rs); without a cache root, none, and none
        // while a Kasetto lock is taken over (that reads every item's bytes).
        let fast = crate::dirs::cache_root()
            .ok()
            .filter(|_| ws.kasetto.is_none())
            .map(|c| crate::files::fast::Fast::new(kind, &places, confine.clone(), &c));
        let resolving = crate::files::Resolving {
            kind,
            old: section,
            update,
            mode,
            within: ws.reads_within.as_deref(),
            cache,
            fast: fast.as_ref(),
        };
        let resolved = crate::files::resolve_all(&resolving, entries);
        // SPEC 17: the files Kasetto wrote for these commands or rules, checked against their
        // sources now read, join the section as kst's (migrate.rs), so the usual rules update
        // or prune them.
        let taken_over = ws
            .kasetto
            .as_ref()
            .map(|k| k.take_files(kind, &resolved, section, config, &ws.scope));
        plans.push(crate::files::plan::build(crate::files::plan::Inputs {
            kind,
            resolved,
            old: taken_over.as_deref().unwrap_or(section),
            places,
            force,
            confine,
            fast: fast.as_ref(),
        }));
        if let Some(f) = &fast {
            f.save();
        }
    }
    Ok(plans)
}

/// One locked git source for `kst fetch`, of any kind: where the config names it, how messages
/// name its kind (`""` for skills, `"MCP "`), the URL to fetch from (the config's: it may carry
/// an ssh user name), and its lock entry (`None`: not locked yet).
pub struct LockedGit<'a> {
    pub at: &'a str,
    pub kind: &'static str,
    pub url: &'a GitUrl,
    pub locked: Option<&'a (dyn LockedEntry + Sync)>,
}

/// Whether the network was used and the commit, or why not.
pub type FetchOutcome = std::result::Result<(bool, String), String>;

/// Put the locked commit of each source into the cache, each on its own thread; nothing is
/// resolved again (a locked branch stays where the lock says). Returns, per source, its
/// canonical URL and the outcome.
pub fn fetch_locked(
    jobs: &[LockedGit],
    cache: &Cache,
    mode: FetchMode,
) -> Vec<(String, FetchOutcome)> {
    let results = crate::threads::each(jobs, "a fetch", |job| fetch_one(job, cache, mode));
    jobs.iter()
        .map(|j| j.url.canonical().to_string())
        .zip(results)
        .collect()
}

fn fetch_one(job: &LockedGit, cache: &Cache, mode: FetchMode) -> FetchOutcome {
    let (at, kind, url) = (job.at, job.kind, job.url.canonical());
    let Some(l) = job.locked else {
        return Err(format!(
            "{at}: {kind}{url} is not in the lock; run `kst lock` first"
        ));
    };
    let commit = l
        .commit()
        .and_then(crate::oid::parse)
        .ok_or_else(|| format!("{at}: the lock has no valid commit for {kind}{url}"))?;
    let db = cache.database(url);
    let _held = db.lock().map_err(|e| format!("{e:#}"))?;
    let repo = db.open_or_init().map_err(|e| format!("{e:#}"))?;
    let want = crate::git::Want::Locked {
        commit,
        requested: l.requested().clone(),
    };
    let r = crate::git::resolve(&repo, job.url, &want, mode, &mut |_, _, _| {})
        .map_err(|e| format!("{at}: {url}: {e:#}"))?;
    Ok((r.fetched, commit.to_string()))
}

/// Every path the result of a sync of `ws` depends on, for the whole-run memo (`runmemo.rs`),
/// when the memo can witness them all: a
/// config of local sources of skills, commands and instructions, and nothing else (see the module
/// doc); None otherwise. `explicit`: the config was named by `--config`.
pub fn memo_witnesses<X, D>(
    ws: &crate::workspace::Workspace,
    explicit: bool,
    skills: &[crate::resolve::ResolvedSource],
    skill_items: &[crate::item::Item<X, D>],
    plans: &[crate::files::plan::FilePlan],
) -> Option<crate::runmemo::Witnesses> {
    let c = &ws.config;
    let local = |e: &crate::config::SkillSource| {
        matches!(e.source, crate::source::Source::Local { .. }) && e.trust.is_none()
    };
    let memoisable = c.mcps.is_empty()
        && !c.remote
        && c.trust.is_none()
        && ws.kasetto.is_none()
        && c.skills
            .iter()
            .chain(&c.commands)
            .chain(&c.instructions)
            .all(local);
    if !memoisable {
        return None;
    }
    let mut w = crate::runmemo::Witnesses::default();
    // The project, as spelled and as resolved: in the project scope nothing is read or written
    // through a link leading out of it, and a stranger's config reads only inside it.
    let project = (ws.scope.scope == crate::config::Scope::Project).then_some(&ws.scope.root);
    for c in project.into_iter().chain(&ws.reads_within) {
        w.confine(c);
    }
    if !explicit && crate::envvars::non_empty(crate::envvars::KASETTO_CONFIG).is_none() {
        w.discovery(&std::env::current_dir().ok()?);
    }
    for f in &c.files {
        w.path(f);
    }
    w.path(&ws.scope.lock_path);
    w.path(&crate::trust::record_path().ok()?);
    // The folders between the config's and each source (`./packs/main`: `packs`): whether the
    // source lies inside the project, for a stranger's config, is judged through them
    // (`trust::check_stranger_sources`), and one swapped for a link out of the project leaves
    // the source folder's own stat data as it was.
    let home = c.path.parent().unwrap_or(std::path::Path::new("/"));
    for e in c.skills.iter().chain(&c.commands).chain(&c.instructions) {
        if let crate::source::Source::Local { path, .. } = &e.source {
            w.under(home, path);
        }
    }
    for r in skills {
        r.observed.as_ref()?.witness(&mut w)?;
    }
    // An installed skill is compared with its tree id: all of it.
    for item in skill_items {
        for d in &item.dests {
            w.tree(&ws.scope.root, &d.target.abs, false)?;
        }
    }
    for plan in plans {
        for r in &plan.resolved {
            r.observed.as_ref()?.witness(&mut w)?;
        }
        for item in &plan.items {
            for d in &item.dests {
                w.under(&ws.scope.root, &d.target.abs);
            }
        }
    }
    Some(w)
}

"""The whole platform as real processes: the four services and the WeChat simulator, pointed at a
scratch database and a topic namespace of their own. Used by the e2e suite and the demo."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy import simulator_config
from tests.support.ports import free_port
from tests.support.servers import ROOT, SERVICES

WECHAT_APPID = "wxd0c0ffee5ea1ed01"
WECHAT_SECRET = "0123456789abcdef0123456789abcdef"


@dataclass
class Platform:
    urls: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # How each process was started: what :meth:`start` runs again after a crash.
    commands: dict[str, list[str]] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start process ``name`` (again), as :func:`launch_platform` did: what a process
        supervisor does for one that died. Its log is appended to."""
        log = (self.log_dir / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen(
                self.commands[name],
                cwd=ROOT,
                env=os.environ | self.environments[name],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()  # the child holds its own copy
        self.processes[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` (a crash: no shutdown runs) and reap it."""
        proc = self.processes[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def service_environment(
    service: str, database_url: str, kafka: str, namespace: str, port: int, wechat_url: str
) -> dict[str, str]:
    prefix = f"GONGHUI_{service.upper()}_"
    env = {
        f"{prefix}DATABASE_URL": database_url,
        f"{prefix}KAFKA_BOOTSTRAP": kafka,
        f"{prefix}TOPIC_NAMESPACE": namespace,
        f"{prefix}HTTP_PORT": str(port),
        f"{prefix}RELAY_POLL_SECONDS": "0.2",
    }
    if service == "notifications":
        env |= {
            f"{prefix}WECHAT_BASE_URL": wechat_url,
            f"{prefix}WECHAT_APPID": WECHAT_APPID,
            f"{prefix}WECHAT_SECRET": WECHAT_SECRET,
            f"{prefix}WECHAT_CALLBACK_TOKEN": simulator_config.CALLBACK_TOKEN,
        }
    return env


def launch_platform(
    dsn_for: dict[str, str],
    kafka: str,
    namespace: str,
    log_dir: Path,
    split: dict[str, int] | None = None,
    settings: dict[str, str] | None = None,
) -> Platform:
    """Start every process; :func:`wait_ready` then waits until all of them answer.

    Each service runs as one process, except those in ``split`` (service -> N): they run as
    ``--role api --workers N`` (named after the service) plus a ``<service>_worker`` process with
    ``--role worker`` (see shared.serve). ``settings`` are further environment variables for
    every service (e.g. ``GONGHUI_NOTIFICATIONS_SEND_RATE_PER_SECOND``).
    """
    split = split or {}
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in (*SERVICES, "wechat_simulator")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    platform = Platform(urls, log_dir)
    callback = f"{urls['notifications']}/wechat/callback"
    config = simulator_config.write(log_dir / "wechat-sim.json")
    commands = {
        "wechat_simulator": [
            sys.executable,
            "-m",
            "wechat_simulator",
            "--port",
            str(ports["wechat_simulator"]),
            "--config",
            str(config),
            "--callback-url",
            callback,
        ]
    }
    envs: dict[str, dict[str, str]] = {"wechat_simulator": {}}
    for service in SERVICES:
        commands[service] = [sys.executable, "-m", f"services.{service}"]
        envs[service] = service_environment(
            service, dsn_for[service], kafka, namespace, ports[service], urls["wechat_simulator"]
        ) | (settings or {})
        if service in split:
            worker = f"{service}_worker"
            commands[worker] = [*commands[service], "--role", "worker"]
            # The worker serves /healthz, /readyz and /metrics on a port of its own.
            port = free_port()
            urls[worker] = f"http://127.0.0.1:{port}"
            envs[worker] = envs[service] | {f"GONGHUI_{service.upper()}_HTTP_PORT": str(port)}
            commands[service] += ["--role", "api", "--workers", str(split[service])]
    platform.commands, platform.environments = commands, envs
    for name in commands:
        platform.start(name)
    return platform


async def wait_ready(platform: Platform, timeout: float = 90.0) -> None:
    """Wait for every process to answer; stop them all if one does not."""
    try:
        await _wait_ready(platform, timeout)
    except Exception:
        platform.stop()
        raise


async def _wait_ready(platform: Platform, timeout: float) -> None:
    probes = {
        name: f"{url}/_sim/stats" if name == "wechat_simulator" else f"{url}/readyz"
        for name, url in platform.urls.items()
    }
    deadline = asyncio.get_running_loop().time() + timeout
    workers = [name for name in platform.processes if name not in probes]  # no HTTP to probe
    async with httpx.AsyncClient(timeout=2) as client:
        for name, probe in probes.items():
            while True:
                if platform.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited; see {platform.log_dir / name}.log")
                try:
                    if (await client.get(probe)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"{name} not ready; see {platform.log_dir / name}.log")
                await asyncio.sleep(0.3)
    for name in workers:
        if platform.processes[name].poll() is not None:
            raise RuntimeError(f"{name} exited; see {platform.log_dir / name}.log")

"""The engine binary of one partition, started as a child process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import grpc

from venue.contract.config import VenueConfig
from venue.contract.engine import engine_arguments
from venue.enginepb import engine_pb2, engine_pb2_grpc
from venue.local.process import Child, Service, free_port, port_open, wait_until

_REPO = Path(__file__).resolve().parents[3]


def engine_binary() -> Path:
    """VENUE_ENGINE_BINARY, else this checkout's build, else `venue-engine` on PATH."""
    configured = os.environ.get("VENUE_ENGINE_BINARY")
    if configured:
        return Path(configured)
    built = _REPO / "engine" / "build" / "venue-engine"
    if built.exists():
        return built
    on_path = shutil.which("venue-engine")
    if on_path:
        return Path(on_path)
    raise FileNotFoundError("venue-engine is not built: run `make engine`")


class EngineProcess(Service):
    def __init__(self, venue: VenueConfig, partition: int, data_dir: Path,
                 port: int | None = None) -> None:
        self.venue = venue
        self.partition = partition
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.child: Child | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EngineProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(engine_binary()),
                *engine_arguments(self.venue, self.partition, self.address, self.data_dir)]
        self.child = Child(f"engine-{self.partition}", argv,
                           self.data_dir / f"engine-{self.partition}.log").start()
        wait_until(self._serving, f"engine partition {self.partition}", timeout,
                   self.child.process, self.child.log)
        return self

    def _serving(self) -> bool:
        """The engine says it serves (its Health call; gRPC's channel_ready_future would
        take 0.2 s more, its state polled at that interval)."""
        if not port_open(self.port):
            return False
        with grpc.insecure_channel(self.address) as channel:
            try:
                return engine_pb2_grpc.MatchingEngineStub(channel).Health(
                    engine_pb2.HealthRequest(), timeout=1, wait_for_ready=True).serving
            except grpc.RpcError:
                return False


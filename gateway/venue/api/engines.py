"""The gateway's gRPC channels to the engines: one per partition, opened on first use.

The gateway asks the engines only for reads (GetBook, Replay); orders reach them
through the queue and the submitters, never from here.
"""

from __future__ import annotations

import grpc

from venue.contract.config import Settings
from venue.enginepb import engine_pb2_grpc


class EngineUnavailable(Exception):
    """An engine partition did not answer (or is not configured)."""

    def __init__(self, partition: int, reason: str) -> None:
        super().__init__(f"engine partition {partition} unavailable: {reason}")
        self.partition = partition


class EngineChannels:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, engine_pb2_grpc.MatchingEngineStub] = {}

    def stub(self, partition: int) -> engine_pb2_grpc.MatchingEngineStub:
        stub = self._stubs.get(partition)
        if stub is None:
            try:
                address = self._settings.engine_address(partition)
            except ValueError as error:
                raise EngineUnavailable(partition, str(error)) from None
            channel = grpc.aio.insecure_channel(address)
            self._channels[partition] = channel
            stub = self._stubs[partition] = engine_pb2_grpc.MatchingEngineStub(channel)
        return stub

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

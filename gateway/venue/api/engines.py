"""The gateway's gRPC channels to the engines: one per partition, opened on first use.

The gateway asks the engines only for reads (GetBook, Replay, and Replay followed for
the market feed); orders reach them through the queue and the submitters, never from
here.
"""

from __future__ import annotations

import grpc

from venue.contract.config import Settings
from venue.contract.wire import FOLLOW_GRPC_OPTIONS
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc

_REPLAY = f"/{pb.DESCRIPTOR.services_by_name['MatchingEngine'].full_name}/Replay"


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
        self._follow_channels: dict[int, grpc.Channel] = {}

    def stub(self, partition: int) -> engine_pb2_grpc.MatchingEngineStub:
        stub = self._stubs.get(partition)
        if stub is None:
            channel = grpc.aio.insecure_channel(self._address(partition))
            self._channels[partition] = channel
            stub = self._stubs[partition] = engine_pb2_grpc.MatchingEngineStub(channel)
        return stub

    def follow_market(self, partition: int, from_sequence: int) -> grpc.Call:
        """The partition's level changes and trades from `from_sequence` on, each batch as
        the engine journals it (Replay with follow and market_only), until cancelled: a
        blocking iterator of each ReportBatch's bytes, unparsed, for
        _reportwire.market_events. Its own (synchronous) channel, so a thread can wait on
        it while the event loop does other work."""
        channel = self._follow_channels.get(partition)
        if channel is None:
            channel = self._follow_channels[partition] = grpc.insecure_channel(
                self._address(partition), options=FOLLOW_GRPC_OPTIONS)
        replay = channel.unary_stream(_REPLAY,
                                      request_serializer=pb.ReplayRequest.SerializeToString,
                                      response_deserializer=None)
        return replay(pb.ReplayRequest(from_sequence=from_sequence, follow=True,
                                       market_only=True))

    def _address(self, partition: int) -> str:
        try:
            return self._settings.engine_address(partition)
        except ValueError as error:
            raise EngineUnavailable(partition, str(error)) from None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()
        for channel in self._follow_channels.values():
            channel.close()
        self._follow_channels.clear()

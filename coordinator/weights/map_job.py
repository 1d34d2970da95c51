"""The weight-map job: a torch net's map to its MindSpore port, found automatically, or by the layer rules alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coordinator.session import WorkerTarget, open_session, open_worker
from proto import transport
from proto.errors import UsageError
from proto.weights.auto_match import match_weights
from proto.weights.map_file import WeightMap, weight_map_json
from proto.weights.weight_plan import map_for, names_weight_map, rules_weight_map
from proto.worker.interface import ParameterListing


@dataclass(frozen=True)
class WeightMapResult:
    """A written-to-be map, the torch listing it covers, and how its pairs were found."""

    weight_map: WeightMap
    listing: ParameterListing
    how: str = ""
    found_by: dict[str, str] | None = None  # torch name -> "name" | "rules" | "structure"; None: all by rules

    def json(self) -> str:
        """The map file's text ([name_map, value_map], TroubleShooter's format)."""
        return weight_map_json(self.weight_map)

    def to_dict(self, out_path: Path) -> dict:
        from coordinator.render.weight_report import weight_map_to_dict

        return weight_map_to_dict(self.weight_map, self.listing, out_path, self.found_by, self.how)


def make_weight_map(targets: tuple[WorkerTarget, WorkerTarget, transport.Security], strategy: str | None,
                    prefix: str | None = None, verbose: bool = False) -> WeightMapResult:
    """The map of the pt side's net: against the ms side when one is given (auto by default, checked against
    its parameters), else by the layer rules (or names) over the torch net alone."""
    pt, ms, security = targets
    if ms.address is None and ms.model_spec is None:
        if strategy == "auto":
            raise UsageError("--map auto pairs against the MindSpore net: give --ms ADDRESS or --ms-model SPEC")
        with open_worker("pt", pt, security, verbose) as worker:
            listing = worker.list_parameters()
        if strategy == "names":
            return WeightMapResult(names_weight_map(listing), listing, found_by={p.name: "name" for p in listing.parameters})
        return WeightMapResult(rules_weight_map(listing, prefix), listing)
    if prefix:
        raise UsageError("--prefix applies to a map made from the torch net alone; with --ms the names come from it")
    with open_session(pt, ms, security, verbose=verbose) as session:
        pt_listing, ms_listing = session.both(session.pt.list_parameters, session.ms.list_parameters)
    if (strategy or "auto") == "auto":
        match = match_weights(pt_listing, ms_listing)
        return WeightMapResult(match.weight_map(), pt_listing, match.summary(),
                               {p.pt_name: p.how for p in match.pairings})
    weight_map, how = map_for(pt_listing, ms_listing, strategy)
    found = "name" if strategy == "names" else strategy  # the matcher's word for a pairing by the same name
    return WeightMapResult(weight_map, pt_listing, how, {p.name: found for p in pt_listing.parameters})

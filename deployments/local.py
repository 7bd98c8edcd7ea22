"""Serve the place-product and campaign flows from this process: deployments without a work pool.

``python -m deployments.local`` registers the ``place-product-local`` and ``campaign-local``
deployments with the Prefect server at $PREFECT_API_URL and runs their flow runs here until
stopped. The work-pool deployments (with the campaign's schedule) are in ``prefect.yaml``.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.campaign import run_campaign
from flows.place_product import place_product

DEPLOYMENT_NAME = "place-product-local"
EXAMPLE_PARAMETERS = {
    "request": {
        "product": "examples/olive-oil-bottle.jpg",
        "prompts": ["sunlit marble kitchen counter, morning light", "rustic wooden table, warm evening light"],
    }
}


def build() -> RunnerDeployment:
    """The deployment, with the bundled example as default parameters."""
    return place_product.to_deployment(
        name=DEPLOYMENT_NAME,
        parameters=EXAMPLE_PARAMETERS,
        tags=["placewright"],
        description="Place a product photo in scenes; served from a local process.",
    )


def build_campaign() -> RunnerDeployment:
    """The campaign deployment: no default parameters, so its run form holds only what the user fills in.

    Run the bundled example with
    ``prefect deployment run campaign/campaign-local -p campaign_file=examples/campaign.yaml``.
    """
    return run_campaign.to_deployment(
        name="campaign-local",
        tags=["placewright", "campaign"],
        description="Every product of a campaign in every scene; served from a local process.",
    )


if __name__ == "__main__":
    serve(build(), build_campaign())

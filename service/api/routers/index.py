from fastapi import APIRouter

from service.api.deps import RegistryDep, SettingsDep
from service.schemas import IndexOverview, IndexYear

router = APIRouter(prefix="/v1", tags=["index"])


@router.get("/index", response_model=IndexOverview)
def index_overview(registry: RegistryDep, settings: SettingsDep) -> IndexOverview:
    years = []
    for year in registry.years():
        m = registry.manifest(year)
        years.append(
            IndexYear(
                year=year, built_at=m.get("built_at"), schema_version=m.get("schema_version"),
                counts=m.get("counts", {}), embedding=m.get("embedding", {}),
                sources=m.get("sources", {}), warnings=m.get("warnings", []),
            )
        )
    return IndexOverview(default_year=settings.default_year, years=years)

from services.union_funds.main import Settings, build
from shared.serve import serve

serve(build, Settings())

import Collector
import LeakReport
print("leakcollect")

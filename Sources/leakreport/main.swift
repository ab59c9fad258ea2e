import LeakReport
print("leakreport")

S = ["water","snow","grass","sand","street","indoors","trees","rocks","sky"]
WORDS = {
 "water": "water pool lake ocean sea river stream waves wave pond fountain surf underwater puddle creek waterfall swimming swims swim splashes splashing splash surfing surfs wading wades",
 "snow": "snow snowy ice icy skiing skis ski snowboard snowboarding sled sledding",
 "grass": "grass grassy field fields lawn meadow yard",
 "sand": "beach sand sandy desert shore",
 "street": "street streets road sidewalk city town parking crosswalk highway alley",
 "indoors": "room kitchen couch sofa bed bedroom bathroom restaurant store shop classroom office indoors inside living",
 "trees": "forest woods trees tree",
 "rocks": "rock rocks rocky cliff cliffs mountain mountains boulder",
 "sky": "sky"}
W = {k: set(v.split()) for k, v in WORDS.items()}
